using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Api;

/// <summary>Options of the HTTP API (<see cref="ApiExtensions.AddVicunaBatchApi"/>).</summary>
public sealed class ApiOptions
{
    /// <summary>Accepted bearer keys; each key is its own tenant. Required: at least one.</summary>
    public List<string> ApiKeys { get; } = [];

    /// <summary>
    /// The installation's secret that tenant ids are keyed with (<see cref="TenantIds"/>): <c>serve</c> reads the data
    /// folder's <c>tenant_key</c>, the Functions app <c>Api__TenantKey</c> (a Key Vault reference). Required: at least
    /// <see cref="MinTenantKeyLength"/> characters. Never change it: the tenants' batches and files are stored under the
    /// ids it made.
    /// </summary>
    public string TenantKey { get; set; } = "";

    /// <summary>The shortest tenant key accepted (<c>openssl rand -hex 32</c> gives 64).</summary>
    public const int MinTenantKeyLength = 32;

    /// <summary>Largest accepted upload (<c>POST /v1/files</c>, multipart validate), in bytes. Default 200 MiB (OpenAI's limit).</summary>
    public long MaxUploadBytes { get; set; } = 200L * 1024 * 1024;

    /// <summary>Webhook URLs may be http and point at loopback hosts (the local server). Default false: https and no loopback.</summary>
    public bool AllowLoopbackWebhooks { get; set; }

    /// <summary>The address rules webhook URLs are checked against at create (from <see cref="AllowLoopbackWebhooks"/>;
    /// private and link-local ranges, cloud metadata included, are always refused).</summary>
    public WebhookUrlPolicyOptions WebhookUrls => new() { AllowHttp = AllowLoopbackWebhooks, AllowLoopback = AllowLoopbackWebhooks };

    /// <summary>Page size of <c>GET /v1/batches</c> without <c>limit</c>. Default 20; <c>limit</c> may ask for 1–100.</summary>
    public int DefaultListLimit { get; set; } = 20;

    /// <summary>The shortest API key accepted.</summary>
    public const int MinKeyLength = 8;

    /// <summary>Whether <paramref name="key"/> may be an API key: at least <see cref="MinKeyLength"/> characters, not blank.</summary>
    public static bool IsUsableKey(string key) => !string.IsNullOrWhiteSpace(key) && key.Length >= MinKeyLength;

    public void Validate()
    {
        if (ApiKeys.Count == 0) throw new ArgumentException("at least one API key is required", nameof(ApiKeys));
        if (!ApiKeys.All(IsUsableKey))
            throw new ArgumentException($"API keys must be at least {MinKeyLength} non-blank characters", nameof(ApiKeys));
        if (TenantKey.Length < MinTenantKeyLength)
            throw new ArgumentException($"the tenant key must be at least {MinTenantKeyLength} characters", nameof(TenantKey));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxUploadBytes, 1, nameof(MaxUploadBytes));
        if (DefaultListLimit is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(DefaultListLimit), DefaultListLimit, "must be in [1, 100]");
    }
}
