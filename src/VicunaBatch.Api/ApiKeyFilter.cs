using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace VicunaBatch.Api;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> on every <c>/v1</c> endpoint. A key's tenant id is a hash of the key,
/// so keys are never stored or logged; comparison is constant-time over the hashes.
/// </summary>
internal sealed class ApiKeyFilter : IEndpointFilter
{
    private const string TenantItem = "VicunaBatch.Tenant";
    private readonly byte[][] _keyHashes;

    public ApiKeyFilter(ApiOptions options) => _keyHashes = options.ApiKeys.Select(Hash).ToArray();

    /// <summary>The authenticated tenant of the request (set before any handler runs).</summary>
    public static string TenantOf(HttpContext context) =>
        context.Items[TenantItem] as string ?? throw new InvalidOperationException("request was not authenticated");

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        Authenticate(context.HttpContext) is { } refused ? refused : await next(context);

    /// <summary>Checks the bearer key and records the tenant on the request; the 401 to answer when refused, else null.</summary>
    public IResult? Authenticate(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
            return ApiErrors.Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.");
        var hash = Hash(header[7..].Trim());
        bool known = false;
        foreach (var keyHash in _keyHashes) known |= CryptographicOperations.FixedTimeEquals(hash, keyHash);
        if (!known) return ApiErrors.Unauthorized("Incorrect API key provided.");
        context.Items[TenantItem] = "t" + Convert.ToHexStringLower(hash)[..32];
        return null;
    }

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}
