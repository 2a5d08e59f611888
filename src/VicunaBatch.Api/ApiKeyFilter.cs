using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace VicunaBatch.Api;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c> on every <c>/v1</c> endpoint. A key's tenant id is a keyed hash of the key
/// (<see cref="TenantIds"/>), so keys are never stored or logged; comparison is constant-time over the hashes. A request
/// that passes waits for the <see cref="TenantMigration"/> before its handler runs.
/// </summary>
internal sealed class ApiKeyFilter : IEndpointFilter
{
    private const string TenantItem = "VicunaBatch.Tenant";
    private readonly TenantIds _ids;
    private readonly TenantMigration _migration;
    private readonly byte[][] _keyMacs;

    public ApiKeyFilter(ApiOptions options, TenantIds ids, TenantMigration migration)
    {
        (_ids, _migration) = (ids, migration);
        _keyMacs = options.ApiKeys.Select(ids.Mac).ToArray();
    }

    /// <summary>The authenticated tenant of the request (set before any handler runs).</summary>
    public static string TenantOf(HttpContext context) =>
        context.Items[TenantItem] as string ?? throw new InvalidOperationException("request was not authenticated");

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        await AuthenticateAsync(context.HttpContext) is { } refused ? refused : await next(context);

    /// <summary>
    /// Checks the bearer key and records the tenant on the request, then waits for the tenants' migration; the 401 to
    /// answer when refused, else null.
    /// </summary>
    public async Task<IResult?> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
            return ApiErrors.Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.");
        var mac = _ids.Mac(header[7..].Trim());
        bool known = false;
        foreach (var keyMac in _keyMacs) known |= CryptographicOperations.FixedTimeEquals(mac, keyMac);
        if (!known) return ApiErrors.Unauthorized("Incorrect API key provided.");
        context.Items[TenantItem] = TenantIds.IdOf(mac);
        await _migration.WaitAsync(context.RequestAborted);
        return null;
    }
}
