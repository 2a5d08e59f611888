using System.Diagnostics;
using System.Text.Json;

namespace VicunaBatch.Testing;

/// <summary>One delivery as a receiver got it: its three Standard Webhooks headers and its body.</summary>
public sealed record ReceivedWebhook(string Id, string Timestamp, string Signature, string Body);

/// <summary>
/// What a user's receiver verifying with the Standard Webhooks reference library (npm <c>standardwebhooks</c>, installed by
/// tests/run.sh in tests/VicunaBatch.Api.Tests/sdk) says of deliveries: <c>sdk/verify_webhook.mjs</c> run by node.
/// </summary>
public static class StandardWebhooksLibrary
{
    private static string SdkFolder => Path.Combine(Checkout.Root, "tests", "VicunaBatch.Api.Tests", "sdk");

    /// <summary>Per delivery, in order: null when the library verifies it with <paramref name="secret"/>, else its error.</summary>
    public static async Task<IReadOnlyList<string?>> VerifyAsync(string secret, IReadOnlyList<ReceivedWebhook> deliveries)
    {
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = SdkFolder, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.ArgumentList.Add("verify_webhook.mjs");
        start.ArgumentList.Add(secret);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(JsonSerializer.Serialize(deliveries.Select(d => new { id = d.Id, timestamp = d.Timestamp, signature = d.Signature, body = d.Body })));
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(cts.Token);
        if (process.ExitCode != 0) throw new InvalidOperationException($"node verify_webhook.mjs failed ({process.ExitCode}): {await error}");
        var lines = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length != deliveries.Count) throw new InvalidOperationException($"verify_webhook.mjs printed {lines.Length} lines for {deliveries.Count} deliveries");
        return lines.Select(l => JsonDocument.Parse(l).RootElement)
            .Select(r => r.GetProperty("valid").GetBoolean() ? null : r.GetProperty("error").GetString() ?? "invalid").ToList();
    }
}
