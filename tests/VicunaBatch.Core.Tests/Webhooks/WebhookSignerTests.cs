using System.Security.Cryptography;
using System.Text;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Tests.Webhooks;

public sealed class WebhookSignerTests
{
    // The Standard Webhooks specification's example.
    private const string SpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private const string SpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    private const string SpecBody = """{"test": 2432232314}""";
    private static readonly DateTimeOffset SpecTime = DateTimeOffset.FromUnixTimeSeconds(1614265330);

    /// <summary>Independent reference: HMAC-SHA256 by hand over "{id}.{timestamp}.{body}".</summary>
    private static string ReferenceSignature(string secret, string id, long timestamp, string body) =>
        "v1," + Convert.ToBase64String(new HMACSHA256(Convert.FromBase64String(secret["whsec_".Length..]))
            .ComputeHash(Encoding.UTF8.GetBytes(id + "." + timestamp + "." + body)));

    [Fact]
    public void CreateHeaders_specExample_matchesPublishedSignature()
    {
        var headers = WebhookSigner.CreateHeaders(SpecSecret, SpecId, SpecTime, SpecBody);

        Assert.Equal(new WebhookHeaders(SpecId, "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), headers);
    }

    [Fact]
    public void CreateHeaders_generatedSecretAndUnicodeBody_matchesIndependentHmac()
    {
        var secret = WebhookSigner.GenerateSecret();
        const string body = """{"id":"evt_1","text":"héllo ✓"}""";

        var headers = WebhookSigner.CreateHeaders(secret, "evt_1", SpecTime, body);

        Assert.Equal(ReferenceSignature(secret, "evt_1", 1614265330, body), headers.Signature);
    }

    [Theory]
    [InlineData(24)]
    [InlineData(32)]
    public void GenerateSecret_size_whsecPrefixAndKeyLength(int numBytes)
    {
        var secret = WebhookSigner.GenerateSecret(numBytes);

        Assert.StartsWith("whsec_", secret);
        Assert.Equal(numBytes, Convert.FromBase64String(secret[6..]).Length);
        Assert.NotEqual(secret, WebhookSigner.GenerateSecret(numBytes));
    }

    [Theory]
    [InlineData(23)]
    [InlineData(33)]
    public void GenerateSecret_sizeOutsideRange_throws(int numBytes) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => WebhookSigner.GenerateSecret(numBytes));

    [Fact]
    public void Verify_specExample_valid()
    {
        var headers = new WebhookHeaders(SpecId, "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(SpecSecret, headers, SpecBody, SpecTime.AddMinutes(4)));
    }

    [Fact]
    public void Verify_tamperedBody_signatureMismatch()
    {
        var headers = WebhookSigner.CreateHeaders(SpecSecret, SpecId, SpecTime, SpecBody);

        Assert.Equal(WebhookVerifyResult.SignatureMismatch, WebhookSigner.Verify(SpecSecret, headers, """{"test": 2432232315}""", SpecTime));
    }

    [Fact]
    public void Verify_otherSecretOrId_signatureMismatch()
    {
        var headers = WebhookSigner.CreateHeaders(SpecSecret, SpecId, SpecTime, SpecBody);

        Assert.Equal(WebhookVerifyResult.SignatureMismatch, WebhookSigner.Verify(WebhookSigner.GenerateSecret(), headers, SpecBody, SpecTime));
        Assert.Equal(WebhookVerifyResult.SignatureMismatch, WebhookSigner.Verify(SpecSecret, headers with { Id = "msg_other" }, SpecBody, SpecTime));
    }

    [Theory]
    [InlineData(-301)]
    [InlineData(301)]
    public void Verify_timestampOutsideFiveMinutes_outOfTolerance(int skewSeconds)
    {
        var headers = WebhookSigner.CreateHeaders(SpecSecret, SpecId, SpecTime, SpecBody);

        Assert.Equal(WebhookVerifyResult.TimestampOutOfTolerance, WebhookSigner.Verify(SpecSecret, headers, SpecBody, SpecTime.AddSeconds(skewSeconds)));
        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(SpecSecret, headers, SpecBody, SpecTime.AddSeconds(skewSeconds), TimeSpan.FromMinutes(6)));
    }

    [Fact]
    public void Verify_severalSignaturesOneValid_valid()
    {
        var valid = WebhookSigner.CreateHeaders(SpecSecret, SpecId, SpecTime, SpecBody);
        var other = WebhookSigner.CreateHeaders(WebhookSigner.GenerateSecret(), SpecId, SpecTime, SpecBody);

        var headers = valid with { Signature = $"v2,abc {other.Signature} {valid.Signature}" };

        Assert.Equal(WebhookVerifyResult.Valid, WebhookSigner.Verify(SpecSecret, headers, SpecBody, SpecTime));
        Assert.Equal(WebhookVerifyResult.SignatureMismatch, WebhookSigner.Verify(SpecSecret, headers with { Signature = other.Signature + " v1,!!notbase64" }, SpecBody, SpecTime));
    }

    [Theory]
    [InlineData("", "1614265330", "v1,x")]
    [InlineData("msg", "soon", "v1,x")]
    [InlineData("msg", "1614265330", "")]
    public void Verify_malformedHeaders_malformed(string id, string timestamp, string signature) =>
        Assert.Equal(WebhookVerifyResult.MalformedHeaders, WebhookSigner.Verify(SpecSecret, new WebhookHeaders(id, timestamp, signature), SpecBody, SpecTime));

    [Fact]
    public void CreateHeaders_invalidSecret_throwsWithoutEchoingIt()
    {
        var e = Assert.Throws<ArgumentException>(() => WebhookSigner.CreateHeaders("whsec_not*base64", SpecId, SpecTime, SpecBody));

        Assert.DoesNotContain("not*base64", e.Message);
    }
}
