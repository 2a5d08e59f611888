using System.Net;
using System.Net.Sockets;

namespace VicunaBatch.Core.Webhooks;

/// <summary>Options of <see cref="WebhookUrlPolicy"/>. Everything off by default: public https endpoints only.</summary>
public sealed class WebhookUrlPolicyOptions
{
    /// <summary>Allow <c>http://</c> URLs. Default false (https only).</summary>
    public bool AllowHttp { get; init; }

    /// <summary>Allow hosts that are or resolve to loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104, localhost). Default false.</summary>
    public bool AllowLoopback { get; init; }

    /// <summary>Allow private and link-local ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10,
    /// 169.254/16, fe80::/10), and their IPv4-mapped forms. Default false. Cloud metadata (169.254.169.254) is
    /// link-local. No other IPv6 form of these IPv4 addresses (NAT64, 6to4, Teredo, …) is ever allowed.</summary>
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
    /// <summary>Multicast, broadcast, 240/4, or IPv6 outside 2000::/3 that IANA holds reserved: never a webhook receiver.</summary>
    Reserved,
    /// <summary>The name did not resolve (may succeed later).</summary>
    ResolutionFailed,
    /// <summary>An IANA special-purpose range that is no webhook receiver: documentation, benchmarking, IETF protocol
    /// assignments (192.0.0.0/24, 2001::/23), discard-only, ORCHID, SRv6 SIDs, AS112, AMT, the 6to4 relay anycast.</summary>
    SpecialPurpose,
    /// <summary>An IPv6 transition form refused whatever IPv4 address it carries: 6to4, Teredo, IPv4-compatible,
    /// SIIT, the NAT64 local-use prefix.</summary>
    Transition,
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
/// only to — public unicast addresses unless loopback / private ranges are allowed. Checked when a job is
/// submitted and again at delivery, where <see cref="WebhookHttp.CreateHandler"/> also re-checks the address
/// it connects to (DNS rebinding).
/// </summary>
/// <remarks>
/// <para>Ranges (<c>AddressRanges</c>, the IANA special-purpose registries): loopback is governed by
/// <see cref="WebhookUrlPolicyOptions.AllowLoopback"/>; private use, shared (100.64/10), unique-local, site-local and
/// link-local by <see cref="WebhookUrlPolicyOptions.AllowPrivateNetworks"/>; every other special-purpose range,
/// multicast, broadcast and IPv6 outside 2000::/3 are refused always.</para>
/// <para>IPv6 forms that carry an IPv4 address are also judged by it. IPv4-mapped (::ffff:0:0/96) is the IPv4
/// address itself and is judged exactly as that. The NAT64 well-known prefix (64:ff9b::/96) is allowed when it
/// carries a public IPv4 address: it is how an IPv6-only network reaches IPv4 hosts, and it reaches only what the
/// IPv4 address would; RFC 6052 forbids it for non-global IPv4, so any other is refused whatever the options.
/// Refused always, whatever they carry: 6to4 (2002::/16) and Teredo (2001::/32), tunnels through relays that are
/// deprecated or someone else's, never a webhook receiver; IPv4-compatible (::/96, deprecated) and SIIT
/// (::ffff:0:0:0/96, obsolete); and the NAT64 local-use prefix (64:ff9b:1::/48), whose IPv4 position depends on the
/// operator's prefix length and so cannot be read with certainty. When a carried IPv4 address is refused, the reason
/// is its reason (a 6to4 address of 169.254.169.254 is <see cref="WebhookUrlRejection.LinkLocal"/>).</para>
/// </remarks>
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

    /// <summary>Throws unless <paramref name="address"/> is allowed: its own range (<see cref="AddressRanges"/>) and
    /// every IPv4 address it embeds.</summary>
    public void EnsureAllowed(string host, IPAddress address)
    {
        if (AddressRanges.Find(address) is not { } range) return;
        foreach (var embedded in range.EmbeddedAddresses(address))
        {
            if (AddressRanges.Find(embedded) is not { Reason: { } reason } inner) continue;
            bool mapped = range.Embedded == EmbeddedIPv4.Mapped; // the IPv4 address itself; any other form carries public IPv4 only
            if (mapped && Allows(reason)) continue;
            throw Refusal(reason, host, $"{address}, in {range}, which embeds {embedded}, in {inner}", mapped);
        }
        if (range.Reason is { } own && !Allows(own)) throw Refusal(own, host, $"{address}, in {range}", liftable: true);
    }

    private bool Allows(WebhookUrlRejection reason) => reason switch
    {
        WebhookUrlRejection.Loopback => Options.AllowLoopback,
        WebhookUrlRejection.PrivateNetwork or WebhookUrlRejection.LinkLocal => Options.AllowPrivateNetworks,
        _ => false,
    };

    private static WebhookUrlException Refusal(WebhookUrlRejection reason, string host, string what, bool liftable)
    {
        var option = !liftable ? null : reason switch
        {
            WebhookUrlRejection.Loopback => nameof(WebhookUrlPolicyOptions.AllowLoopback),
            WebhookUrlRejection.PrivateNetwork or WebhookUrlRejection.LinkLocal => nameof(WebhookUrlPolicyOptions.AllowPrivateNetworks),
            _ => null,
        };
        return new WebhookUrlException(reason, $"webhook host \"{host}\" is {what}; {(option is null ? "never allowed" : $"allowed only with {option}")}");
    }
}
