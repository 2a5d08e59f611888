using System.Security.Cryptography;
using System.Text;

namespace VicunaBatch.Api;

/// <summary>
/// A key's tenant id: "t" + the first 32 hex digits of HMAC-SHA256(installation key, API key). It names the tenant's
/// blobs (<c>tenants/{id}/</c>) and is its batches' and files' owner. Keyed with a secret of the installation (the data
/// folder's <c>tenant_key</c>; <c>Api__TenantKey</c> from Key Vault on Azure), so the ids in a copy of the blobs let no
/// one test guessed keys offline, and one key has different ids in two installations.
/// </summary>
public sealed class TenantIds
{
    private readonly byte[] _installationKey;

    public TenantIds(string installationKey)
    {
        if (installationKey.Length < ApiOptions.MinTenantKeyLength)
            throw new ArgumentException($"the tenant key must be at least {ApiOptions.MinTenantKeyLength} characters", nameof(installationKey));
        _installationKey = Encoding.UTF8.GetBytes(installationKey);
    }

    public string Of(string apiKey) => IdOf(Mac(apiKey));

    /// <summary>HMAC-SHA256(installation key, UTF-8 of the key): compared in constant time by the key filter, cut to the id.</summary>
    internal byte[] Mac(string apiKey) => HMACSHA256.HashData(_installationKey, Encoding.UTF8.GetBytes(apiKey));

    internal static string IdOf(byte[] mac) => "t" + Convert.ToHexStringLower(mac)[..32];

    /// <summary>The id earlier versions gave a key, an unkeyed SHA-256: only to find what <see cref="TenantMigration"/> moves.</summary>
    public static string Unkeyed(string apiKey) => "t" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(apiKey)))[..32];
}
