using System.Security.Cryptography;
using System.Text;

namespace VicunaBatch.Core.Webhooks;

/// <summary>The three Standard Webhooks headers as they travel (timestamp in Unix seconds, as text).</summary>
public sealed record WebhookHeaders(string Id, string Timestamp, string Signature);

public enum WebhookVerifyResult
{
    Valid,
    /// <summary>A header is empty or the timestamp is not an integer.</summary>
    MalformedHeaders,
    /// <summary>The timestamp is further than the tolerance from now (replay or skewed clock).</summary>
    TimestampOutOfTolerance,
    /// <summary>No <c>v1</c> signature in the header matches the body.</summary>
    SignatureMismatch,
}

/// <summary>
/// Standard Webhooks signing: <c>webhook-signature: v1,&lt;base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")&gt;</c>
/// where the secret is <c>whsec_&lt;base64 key&gt;</c>. Bodies are signed as their UTF-8 bytes.
/// Secrets never appear in exception messages.
/// </summary>
public static class WebhookSigner
{
    public const string IdHeader = "webhook-id";
    public const string TimestampHeader = "webhook-timestamp";
    public const string SignatureHeader = "webhook-signature";
    public const string SecretPrefix = "whsec_";

    /// <summary>Default of <see cref="Verify"/>'s tolerance: 5 minutes either side of now.</summary>
    public static readonly TimeSpan DefaultTolerance = TimeSpan.FromMinutes(5);

    /// <summary>A new <c>whsec_</c> secret of <paramref name="numBytes"/> (24–32) random bytes.</summary>
    public static string GenerateSecret(int numBytes = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numBytes, 24);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(numBytes, 32);
        return SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(numBytes));
    }

    /// <summary>The headers for one send of <paramref name="body"/>.</summary>
    public static WebhookHeaders CreateHeaders(string secret, string messageId, DateTimeOffset timestamp, string body)
    {
        var seconds = timestamp.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new WebhookHeaders(messageId, seconds, "v1," + Convert.ToBase64String(Hmac(DecodeSecret(secret), messageId, seconds, body)));
    }

    /// <summary>
    /// Checks the headers against <paramref name="body"/>: the timestamp within <paramref name="tolerance"/>
    /// (default 5 min) of <paramref name="now"/>, and at least one of the space-separated <c>v1,…</c>
    /// signatures equal (constant-time) to the expected one.
    /// </summary>
    public static WebhookVerifyResult Verify(string secret, WebhookHeaders headers, string body, DateTimeOffset now, TimeSpan? tolerance = null)
    {
        var key = DecodeSecret(secret);
        if (string.IsNullOrEmpty(headers.Id) || string.IsNullOrEmpty(headers.Signature)
            || !long.TryParse(headers.Timestamp, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
            return WebhookVerifyResult.MalformedHeaders;
        if (Math.Abs(now.ToUnixTimeSeconds() - seconds) > (tolerance ?? DefaultTolerance).TotalSeconds)
            return WebhookVerifyResult.TimestampOutOfTolerance;

        var expected = Hmac(key, headers.Id, headers.Timestamp, body);
        var actual = new byte[expected.Length];
        foreach (var part in headers.Signature.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var comma = part.IndexOf(',');
            if (comma < 0 || part.AsSpan(0, comma) is not "v1") continue;
            if (Convert.TryFromBase64String(part[(comma + 1)..], actual, out var written) && written == expected.Length
                && CryptographicOperations.FixedTimeEquals(actual, expected))
                return WebhookVerifyResult.Valid;
        }
        return WebhookVerifyResult.SignatureMismatch;
    }

    /// <summary>The HMAC key of a <c>whsec_</c> secret (the prefix is optional, as in the reference libraries).</summary>
    internal static byte[] DecodeSecret(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        var encoded = secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret;
        try
        {
            var key = Convert.FromBase64String(encoded);
            if (key.Length == 0) throw new FormatException();
            return key;
        }
        catch (FormatException)
        {
            throw new ArgumentException($"the webhook secret must be \"{SecretPrefix}\" followed by base64 key bytes", nameof(secret));
        }
    }

    private static byte[] Hmac(byte[] key, string id, string timestamp, string body) =>
        HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
}
