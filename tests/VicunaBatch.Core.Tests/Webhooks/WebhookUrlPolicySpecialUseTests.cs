using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Tests.Webhooks;

/// <summary>Issue 22, item 3: the IANA special-purpose ranges and every IPv6 form that embeds an IPv4 address.
/// 169.254.169.254 = a9fe:a9fe; 93.184.216.34 (public) = 5db8:d822; Teredo's client is stored XOR ffff:ffff.</summary>
public sealed class WebhookUrlPolicySpecialUseTests
{
    private static WebhookUrlPolicy Policy(bool loopback = false, bool privateNetworks = false) =>
        new(new WebhookUrlPolicyOptions { AllowLoopback = loopback, AllowPrivateNetworks = privateNetworks }, new TableResolver([]));

    [Theory]
    [InlineData("https://[64:ff9b::a9fe:a9fe]/", WebhookUrlRejection.LinkLocal)]                     // NAT64 well-known prefix
    [InlineData("https://[64:ff9b::169.254.169.254]/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://[64:ff9b::a00:1]/", WebhookUrlRejection.PrivateNetwork)]                    // NAT64 of 10.0.0.1
    [InlineData("https://[64:ff9b::7f00:1]/", WebhookUrlRejection.Loopback)]                         // NAT64 of 127.0.0.1
    [InlineData("https://[2002:a9fe:a9fe::]/", WebhookUrlRejection.LinkLocal)]                       // 6to4
    [InlineData("https://[2002:a9fe:a9fe:1:2:3:4:5]/", WebhookUrlRejection.LinkLocal)]
    [InlineData("https://[::a9fe:a9fe]/", WebhookUrlRejection.LinkLocal)]                            // IPv4-compatible
    [InlineData("https://[::ffff:0:a9fe:a9fe]/", WebhookUrlRejection.LinkLocal)]                     // SIIT
    [InlineData("https://[2001:0:4136:e378:8000:63bf:5601:5601]/", WebhookUrlRejection.LinkLocal)]   // Teredo, client 169.254.169.254
    [InlineData("https://[2001:0:a9fe:a9fe:8000:63bf:a247:27dd]/", WebhookUrlRejection.LinkLocal)]   // Teredo, server 169.254.169.254
    [InlineData("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", WebhookUrlRejection.Loopback)]    // Teredo, client 127.0.0.1
    [InlineData("https://[::ffff:169.254.169.254]/", WebhookUrlRejection.LinkLocal)]                 // IPv4-mapped
    public async Task ValidateAsync_ipv6EmbeddingARefusedIPv4_refusedAsTheEmbeddedAddress(string url, WebhookUrlRejection reason)
    {
        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => Policy().ValidateAsync(url));

        Assert.Equal(reason, e.Reason);
        Assert.Contains("which embeds ", e.Message);
    }

    [Theory]
    [InlineData("https://[2002:5db8:d822::1]/")]                            // 6to4 of 93.184.216.34
    [InlineData("https://[2001:0:4136:e378:8000:63bf:a247:27dd]/")]         // Teredo, client 93.184.216.34, server 65.54.227.120
    [InlineData("https://[::5db8:d822]/")]                                  // IPv4-compatible (deprecated)
    [InlineData("https://[::ffff:0:5db8:d822]/")]                           // SIIT (obsolete)
    [InlineData("https://[64:ff9b:1::5db8:d822]/")]                         // NAT64 local-use: where it embeds depends on the operator
    [InlineData("https://[64:ff9b:1:a9fe:a9:fe00::]/")]
    public async Task ValidateAsync_transitionFormOfAPublicIPv4_refusedAsTransition(string url)
    {
        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => Policy(loopback: true, privateNetworks: true).ValidateAsync(url));

        Assert.Equal(WebhookUrlRejection.Transition, e.Reason);
        Assert.False(e.IsTransient);
        Assert.EndsWith("never allowed", e.Message);
    }

    [Theory]
    [InlineData("https://198.18.0.1/", "198.18.0.0/15 benchmarking")]
    [InlineData("https://198.19.255.254/", "198.18.0.0/15 benchmarking")]
    [InlineData("https://192.0.0.1/", "192.0.0.0/29 IPv4 service continuity prefix")]
    [InlineData("https://192.0.0.9/", "192.0.0.9/32 Port Control Protocol anycast")]
    [InlineData("https://192.0.0.170/", "192.0.0.170/31 NAT64/DNS64 discovery")]
    [InlineData("https://192.0.0.200/", "192.0.0.0/24 IETF protocol assignments")]
    [InlineData("https://192.0.2.1/", "192.0.2.0/24 documentation (TEST-NET-1)")]
    [InlineData("https://198.51.100.7/", "198.51.100.0/24 documentation (TEST-NET-2)")]
    [InlineData("https://203.0.113.9/", "203.0.113.0/24 documentation (TEST-NET-3)")]
    [InlineData("https://192.88.99.1/", "192.88.99.0/24 6to4 relay anycast (deprecated)")]
    [InlineData("https://192.31.196.1/", "192.31.196.0/24 AS112-v4")]
    [InlineData("https://192.52.193.1/", "192.52.193.0/24 AMT")]
    [InlineData("https://192.175.48.1/", "192.175.48.0/24 direct delegation AS112 service")]
    [InlineData("https://[100::1]/", "100::/64 discard-only")]
    [InlineData("https://[100:0:0:1::1]/", "100:0:0:1::/64 dummy IPv6 prefix")]
    [InlineData("https://[2001:1::1]/", "2001:1::1/128 Port Control Protocol anycast")]
    [InlineData("https://[2001:2::1]/", "2001:2::/48 benchmarking")]
    [InlineData("https://[2001:3::1]/", "2001:3::/32 AMT")]
    [InlineData("https://[2001:4:112::1]/", "2001:4:112::/48 AS112-v6")]
    [InlineData("https://[2001:10::1]/", "2001:10::/28 ORCHID (deprecated)")]
    [InlineData("https://[2001:20::1]/", "2001:20::/28 ORCHIDv2")]
    [InlineData("https://[2001:30::1]/", "2001:30::/28 drone remote ID entity tags")]
    [InlineData("https://[2001:100::1]/", "2001::/23 IETF protocol assignments")]
    [InlineData("https://[2001:db8::1]/", "2001:db8::/32 documentation")]
    [InlineData("https://[3fff::1]/", "3fff::/20 documentation")]
    [InlineData("https://[3fff:fff:ffff::1]/", "3fff::/20 documentation")]
    [InlineData("https://[5f00::1]/", "5f00::/16 SRv6 SIDs")]
    [InlineData("https://[2620:4f:8000::1]/", "2620:4f:8000::/48 direct delegation AS112 service")]
    public async Task ValidateAsync_specialPurposeRange_refusedEvenWithEveryOption(string url, string range)
    {
        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => Policy(loopback: true, privateNetworks: true).ValidateAsync(url));

        Assert.Equal(WebhookUrlRejection.SpecialPurpose, e.Reason);
        Assert.Contains($", in {range};", e.Message);
        Assert.EndsWith("never allowed", e.Message);
    }

    [Theory]
    [InlineData("https://[4000::1]/", "4000::/3")]      // IPv6 outside 2000::/3: reserved by the IETF
    [InlineData("https://[200::1]/", "200::/7")]
    [InlineData("https://[e000::1]/", "e000::/4")]
    [InlineData("https://[fe00::1]/", "fe00::/9")]
    [InlineData("https://[1:2::3]/", "::/8")]
    [InlineData("https://239.255.255.250/", "224.0.0.0/4")]
    [InlineData("https://[ff0e::1]/", "ff00::/8")]
    public async Task ValidateAsync_reservedOrMulticast_refusedAsReserved(string url, string range)
    {
        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => Policy(loopback: true, privateNetworks: true).ValidateAsync(url));

        Assert.Equal(WebhookUrlRejection.Reserved, e.Reason);
        Assert.Contains($", in {range} ", e.Message);
    }

    [Theory]
    [InlineData("https://93.184.216.34/")]
    [InlineData("https://1.1.1.1/")]
    [InlineData("https://198.17.255.255/")]                          // just below 198.18.0.0/15
    [InlineData("https://198.20.0.1/")]                              // just above it
    [InlineData("https://192.0.1.255/")]
    [InlineData("https://192.0.3.0/")]
    [InlineData("https://[2606:2800:220:1:248:1893:25c8:1946]/")]
    [InlineData("https://[2001:4860:4860::8888]/")]
    [InlineData("https://[2001:200::1]/")]                           // just past 2001::/23
    [InlineData("https://[2001:db9::1]/")]
    [InlineData("https://[3fff:1000::1]/")]                          // just past 3fff::/20
    [InlineData("https://[64:ff9b::5db8:d822]/")]                    // NAT64 of 93.184.216.34: how IPv6-only networks reach IPv4
    [InlineData("https://[64:ff9b::93.184.216.34]/")]
    [InlineData("https://[::ffff:93.184.216.34]/")]                  // IPv4-mapped: the IPv4 address itself
    public async Task ValidateAsync_publicUnicast_allowedByTheDefaultPolicy(string url)
    {
        var (_, addresses) = await Policy().ValidateAsync(url);

        Assert.Single(addresses);
    }

    [Theory]
    [InlineData("https://[::ffff:169.254.169.254]/", false, true, null)]                           // mapped: exactly its IPv4 address
    [InlineData("https://[::ffff:127.0.0.1]/", true, false, null)]
    [InlineData("https://[64:ff9b::a9fe:a9fe]/", false, true, WebhookUrlRejection.LinkLocal)]      // RFC 6052: the well-known prefix carries global IPv4 only
    [InlineData("https://[64:ff9b::7f00:1]/", true, true, WebhookUrlRejection.Loopback)]
    [InlineData("https://[2002:a9fe:a9fe::]/", false, true, WebhookUrlRejection.LinkLocal)]
    [InlineData("https://[::ffff:0:a00:1]/", false, true, WebhookUrlRejection.PrivateNetwork)]
    [InlineData("https://[fec0::1]/", false, false, WebhookUrlRejection.PrivateNetwork)]             // site-local (deprecated), as before
    [InlineData("https://[fec0::1]/", false, true, null)]
    public async Task ValidateAsync_options_liftOnlyTheIPv4MappedForm(string url, bool loopback, bool privateNetworks, WebhookUrlRejection? expected)
    {
        var check = Policy(loopback, privateNetworks).ValidateAsync(url);

        if (expected is null) await check;
        else Assert.Equal(expected, (await Assert.ThrowsAsync<WebhookUrlException>(() => check)).Reason);
    }

    [Fact]
    public async Task ValidateAsync_6to4OfMetadata_messageNamesBothAddressesAndRanges()
    {
        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => Policy().ValidateAsync("https://[2002:a9fe:a9fe::]/"));

        Assert.Equal("webhook host \"2002:a9fe:a9fe::\" is 2002:a9fe:a9fe::, in 2002::/16 6to4, which embeds 169.254.169.254, "
            + "in 169.254.0.0/16 link local (cloud metadata: 169.254.169.254); never allowed", e.Message);
    }

    [Fact]
    public async Task ResolveAllowedAsync_nameResolvingToNat64OfMetadata_refused()
    {
        var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions(), new TableResolver(new() { ["v6only.example.com"] = ["64:ff9b::a9fe:a9fe"] }));

        var e = await Assert.ThrowsAsync<WebhookUrlException>(() => policy.ResolveAllowedAsync("v6only.example.com"));

        Assert.Equal(WebhookUrlRejection.LinkLocal, e.Reason);
    }
}
