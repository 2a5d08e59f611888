using System.Net;
using System.Net.Sockets;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Tests.Webhooks;

/// <summary>A fixed name table: tests never touch DNS. Unknown names fail like a real lookup.</summary>
internal sealed class TableResolver(Dictionary<string, string[]> table) : IHostResolver
{
    public List<string> Asked { get; } = [];

    public Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken = default)
    {
        Asked.Add(host);
        return table.TryGetValue(host, out var addresses)
            ? Task.FromResult<IReadOnlyList<IPAddress>>(addresses.Select(IPAddress.Parse).ToList())
            : Task.FromException<IReadOnlyList<IPAddress>>(new SocketException((int)SocketError.HostNotFound));
    }
}

public sealed class WebhookUrlPolicyTests
{
    private static readonly TableResolver Resolver = new(new()
    {
        ["hooks.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        ["rebind.example.com"] = ["93.184.216.34", "10.1.2.3"],
        ["internal.example.com"] = ["192.168.1.20"],
        ["metadata.example.com"] = ["169.254.169.254"],
        ["loop.example.com"] = ["127.0.0.1"],
        ["empty.example.com"] = [],
    });

    private static WebhookUrlPolicy Policy(bool http = false, bool loopback = false, bool privateNetworks = false) =>
        new(new WebhookUrlPolicyOptions { AllowHttp = http, AllowLoopback = loopback, AllowPrivateNetworks = privateNetworks }, Resolver);

    [Theory]
    [InlineData("https://93.184.216.34/hook")]
    [InlineData("https://[2606:2800:220:1:248:1893:25c8:1946]:8443/hook")]
    [InlineData("https://hooks.example.com/a?b=c")]
    [InlineData("https://172.15.255.255/")]
    [InlineData("https://172.32.0.1/")]
    [InlineData("https://100.128.0.1/")]
    [InlineData("https://169.255.0.1/")]
    public async Task ValidateAsync_publicHttps_allowed(string url)
    {
        var (uri, addresses) = await Policy().ValidateAsync(url);

        Assert.Equal(new Uri(url), uri);
        Assert.NotEmpty(addresses);
    }

    [Theory]
    [InlineData("/relative/hook", WebhookUrlRejection.NotAbsolute)]
    [InlineData("hooks.example.com/hook", WebhookUrlRejection.NotAbsolute)]
    [InlineData("https://user:pw@hooks.example.com/", WebhookUrlRejection.NotAbsolute)]
    [InlineData("http://hooks.example.com/", WebhookUrlRejection.SchemeNotAllowed)]
    [InlineData("ftp://hooks.example.com/", WebhookUrlRejection.SchemeNotAllowed)]
    [InlineData("file:///etc/passwd", WebhookUrlRejection.NotAbsolute)]
    [InlineData("https://127.0.0.1/", WebhookUrlRejection.Loopback)]
    [InlineData("https://127.255.0.9:8080/", WebhookUrlRejection.Loopback)]
    [InlineData("https://[::1]/", WebhookUrlRejection.Loopback)]
    [InlineData("https://[::ffff:127.0.0.1]/", WebhookUrlRejection.Loopback)]
    [InlineData("https://localhost/", WebhookUrlRejection.Loopback)]
    [InlineData("https://LOCALHOST./", WebhookUrlRejection.Loopback)]
    [InlineData("https://api.localhost/", WebhookUrlRejection.Loopback)]
    [InlineData("https://2130706433/", WebhookUrlRejection.Loopback)]
    [InlineData("https://169.254.169.254/latest/meta-data/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://169.254.0.1/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://[fe80::1]/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://[febf::1]/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://10.0.0.1/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://10.255.255.255/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://172.16.0.1/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://172.31.255.255/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://192.168.0.1/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://100.64.0.1/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://[fc00::1]/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://[fd12:3456::1]/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://[::ffff:10.0.0.1]/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://0.0.0.0/", WebhookUrlRejection.Unspecified)]
    [InlineData("https://[::]/", WebhookUrlRejection.Unspecified)]
    [InlineData("https://224.0.0.1/", WebhookUrlRejection.Reserved)]
    [InlineData("https://255.255.255.255/", WebhookUrlRejection.Reserved)]
    [InlineData("https://[ff02::1]/", WebhookUrlRejection.Reserved)]
    [InlineData("https://internal.example.com/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://metadata.example.com/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://loop.example.com/", WebhookUrlRejection.Loopback)]
    [InlineData("https://rebind.example.com/", WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://unknown.example.com/", WebhookUrlRejection.ResolutionFailed)]
    [InlineData("https://empty.example.com/", WebhookUrlRejection.ResolutionFailed)]
    public async Task ValidateAsync_defaultPolicy_rejectedWithReason(string url, WebhookUrlRejection reason)
    {
        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => Policy().ValidateAsync(url));

        Assert.Equal(reason, e.Reason);
        Assert.Equal(reason == WebhookUrlRejection.ResolutionFailed, e.IsTransient);
        Assert.Contains("webhook", e.Message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/", true, true, false, null)]
    [InlineData("http://localhost/", true, true, false, null)]
    [InlineData("https://loop.example.com/", false, true, false, null)]
    [InlineData("http://127.0.0.1/", false, true, false, WebhookUrlRejection.SchemeNotAllowed)]
    [InlineData("https://127.0.0.1/", false, false, true, WebhookUrlRejection.Loopback)]
    [InlineData("https://10.0.0.1/", false, true, false, WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://10.0.0.1/", false, false, true, null)]
    [InlineData("https://[fd00::1]/", false, false, true, null)]
    [InlineData("https://169.254.169.254/", false, false, true, null)]
    [InlineData("https://0.0.0.0/", true, true, true, WebhookUrlRejection.Unspecified)]
    [InlineData("https://[::]/", true, true, true, WebhookUrlRejection.Unspecified)]
    public async Task ValidateAsync_options_allowOnlyTheirRanges(string url, bool http, bool loopback, bool privateNetworks, WebhookUrlRejection? expected)
    {
        var check = Policy(http, loopback, privateNetworks).ValidateAsync(url);

        if (expected is null) await check;
        else Assert.Equal(expected, (await Assert.ThrowsAsync<WebhookUrlException>(() => check)).Reason);
    }

    [Fact]
    public async Task ValidateAsync_literalIpAndLocalhost_resolverNotAsked()
    {
        var resolver = new TableResolver([]);
        var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowLoopback = true }, resolver);

        await policy.ValidateAsync("https://93.184.216.34/");
        await policy.ValidateAsync("https://localhost:8443/");

        Assert.Empty(resolver.Asked);
    }
}
