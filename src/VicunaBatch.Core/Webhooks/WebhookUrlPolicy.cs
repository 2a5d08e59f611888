using System.Net;
using System.Net.Sockets;

namespace VicunaBatch.Core.Webhooks;

/// <summary>Options of <see cref="WebhookUrlPolicy"/>. Everything off by default: public https endpoints only.</summary>
public sealed class WebhookUrlPolicyOptions
{
    /// <summary>Allow <c>http://</c> URLs. Default false (https only).</summary>
    public bool AllowHttp { get; init; }

    /// <summary>Allow hosts that are or resolve to loopback (127.0.0.0/8, ::1, localhost). Default false.</summary>
    public bool AllowLoopback { get; init; }

    /// <summary>Allow private and link-local ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7,
    /// 169.254/16, fe80::/10). Default false. Cloud metadata (169.254.169.254) is link-local.</summary>
    public bool AllowPrivateNetworks { get; init; }
}

public enum WebhookUrlRejection
{
    /// <summary>Not an absolute URL, or it carries user info.</summary>
    NotAbsolute,
    /// <summary>Not https (or http when <see cref="WebhookUrlPolicyOptions.AllowHttp"/>).</summary>
    SchemeNotAllowed,
    Loopback,
    LinkLocal,
    PrivateNetwork,
    /// <summary>0.0.0.0/8 or ::.</summary>
    Unspecified,
    /// <summary>Multicast, broadcast or reserved (240/4) addresses: never a webhook receiver.</summary>
    Reserved,
    /// <summary>The name did not resolve (may succeed later).</summary>
    ResolutionFailed,
}

/// <summary>The one exception of the webhook URL boundary.</summary>
public sealed class WebhookUrlException(WebhookUrlRejection reason, string message, Exception? inner = null) : Exception(message, inner)
{
    public WebhookUrlRejection Reason { get; } = reason;

    /// <summary>Only a failed DNS lookup may pass on a later try.</summary>
    public bool IsTransient => Reason == WebhookUrlRejection.ResolutionFailed;
}

/// <summary>Resolves host names; injectable so tests never touch the network.</summary>
public interface IHostResolver
{
    Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken = default);
}

public sealed class DnsHostResolver : IHostResolver
{
    public static readonly DnsHostResolver Instance = new();

    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken = default) =>
        await Dns.GetHostAddressesAsync(host, cancellationToken);
}

/// <summary>
/// Which webhook URLs may be called: absolute, https (unless allowed), and a host that is — and resolves
/// only to — public addresses unless loopback / private ranges are allowed. Checked when a job is submitted
/// and again at delivery, where <see cref="WebhookHttp.CreateHandler"/> also re-checks the address it
/// connects to (DNS rebinding).
/// </summary>
public sealed class WebhookUrlPolicy(WebhookUrlPolicyOptions options, IHostResolver? resolver = null)
{
    private readonly IHostResolver _resolver = resolver ?? DnsHostResolver.Instance;

    public WebhookUrlPolicyOptions Options { get; } = options;

    /// <summary>Returns the parsed URL and the addresses its host resolved to, all allowed.</summary>
    /// <exception cref="WebhookUrlException">The URL is not allowed, with the reason.</exception>
    public async Task<(Uri Url, IReadOnlyList<IPAddress> Addresses)> ValidateAsync(string url, CancellationToken cancellationToken = default)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host) || uri.UserInfo.Length > 0)
            throw new WebhookUrlException(WebhookUrlRejection.NotAbsolute, $"webhook URL \"{url}\" must be an absolute http(s) URL without user info");
        bool httpOk = Options.AllowHttp && uri.Scheme == Uri.UriSchemeHttp;
        if (uri.Scheme != Uri.UriSchemeHttps && !httpOk)
            throw new WebhookUrlException(WebhookUrlRejection.SchemeNotAllowed,
                $"webhook URL \"{url}\" must use https{(Options.AllowHttp ? " or http" : "")}, not {uri.Scheme}");
        return (uri, await ResolveAllowedAsync(uri.IdnHost, cancellationToken));
    }

    /// <summary>Resolves <paramref name="host"/> (a literal IP is not looked up; <c>localhost</c> is loopback
    /// without a lookup) and throws unless every address is allowed.</summary>
    public async Task<IReadOnlyList<IPAddress>> ResolveAllowedAsync(string host, CancellationToken cancellationToken = default)
    {
        host = host.TrimEnd('.');
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        IReadOnlyList<IPAddress> addresses;
        if (IPAddress.TryParse(host, out var literal)) addresses = [literal];
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
            addresses = [IPAddress.Loopback, IPAddress.IPv6Loopback];
        else
        {
            try { addresses = await _resolver.ResolveAsync(host, cancellationToken); }
            catch (Exception e) when (e is SocketException or ArgumentException)
            {
                throw new WebhookUrlException(WebhookUrlRejection.ResolutionFailed, $"webhook host \"{host}\" did not resolve: {e.Message}", e);
            }
            if (addresses.Count == 0)
                throw new WebhookUrlException(WebhookUrlRejection.ResolutionFailed, $"webhook host \"{host}\" resolved to no address");
        }
        foreach (var address in addresses) EnsureAllowed(host, address);
        return addresses;
    }

    /// <summary>Throws unless <paramref name="address"/> is in an allowed range.</summary>
    public void EnsureAllowed(string host, IPAddress address)
    {
        var range = AddressRanges.Classify(address);
        bool allowed = range switch
        {
            null => true,
            WebhookUrlRejection.Loopback => Options.AllowLoopback,
            WebhookUrlRejection.PrivateNetwork or WebhookUrlRejection.LinkLocal => Options.AllowPrivateNetworks,
            _ => false,
        };
        if (!allowed)
            throw new WebhookUrlException(range!.Value, $"webhook host \"{host}\" is {Describe(range.Value)} ({address}); "
                + (range is WebhookUrlRejection.Loopback ? "allowed only with AllowLoopback"
                    : range is WebhookUrlRejection.PrivateNetwork or WebhookUrlRejection.LinkLocal ? "allowed only with AllowPrivateNetworks"
                    : "never allowed"));
    }

    private static string Describe(WebhookUrlRejection range) => range switch
    {
        WebhookUrlRejection.Loopback => "a loopback address",
        WebhookUrlRejection.LinkLocal => "a link-local address (cloud metadata lives here)",
        WebhookUrlRejection.PrivateNetwork => "a private network address",
        WebhookUrlRejection.Unspecified => "the unspecified address",
        _ => "a multicast, broadcast or reserved address",
    };
}

/// <summary>Address ranges a webhook may not reach by default; null = public unicast.</summary>
internal static class AddressRanges
{
    public static WebhookUrlRejection? Classify(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int length);
        if (length == 4) return ClassifyV4(b[0], b[1]);

        if (address.Equals(IPAddress.IPv6Any)) return WebhookUrlRejection.Unspecified;
        if (address.Equals(IPAddress.IPv6Loopback)) return WebhookUrlRejection.Loopback;
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return WebhookUrlRejection.LinkLocal;          // fe80::/10
        if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))                    // fc00::/7, fec0::/10
            return WebhookUrlRejection.PrivateNetwork;
        if (b[0] == 0xff) return WebhookUrlRejection.Reserved;                                    // ff00::/8 multicast
        return null;
    }

    private static WebhookUrlRejection? ClassifyV4(byte a, byte b) => (a, b) switch
    {
        (0, _) => WebhookUrlRejection.Unspecified,                                     // 0/8
        (127, _) => WebhookUrlRejection.Loopback,                                      // 127/8
        (169, 254) => WebhookUrlRejection.LinkLocal,                                   // 169.254/16
        (10, _) or (192, 168) => WebhookUrlRejection.PrivateNetwork,                   // 10/8, 192.168/16
        (172, >= 16 and <= 31) => WebhookUrlRejection.PrivateNetwork,                  // 172.16/12
        (100, >= 64 and <= 127) => WebhookUrlRejection.PrivateNetwork,                 // 100.64/10 shared (CGNAT)
        (>= 224, _) => WebhookUrlRejection.Reserved,                                   // multicast, 240/4, broadcast
        _ => null,
    };
}
