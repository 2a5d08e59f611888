using System.Diagnostics;
using System.Text.Json;
using VicunaBatch.Testing;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 4's acceptance test: <c>sdk/batch.mjs</c> uses the OpenAI Node SDK unchanged (only baseURL and apiKey)
/// to upload, create, poll to completed and download. Installs the SDK (<c>npm ci</c>) when node_modules is missing.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SdkClientTests(ServerFixture server)
{
    private static readonly string SdkFolder = Path.Combine(Checkout.Root, "tests", "VicunaBatch.Api.Tests", "sdk");

    [Fact]
    public async Task OpenAiNodeSdk_uploadCreatePollDownload_completesWithEveryCustomId()
    {
        await EnsureSdkAsync();
        var ids = Enumerable.Range(0, 6).Select(i => $"sdk-{i}").ToArray();
        var input = Path.Combine(server.DataPath, "sdk-input.jsonl");
        await File.WriteAllTextAsync(input, Api.ChatLines(ids));

        var run = await RunAsync("node", ["batch.mjs", input], new()
        {
            ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
            ["OPENAI_API_KEY"] = ServerFixture.Keys[7],
        }, TimeSpan.FromSeconds(90));

        Assert.True(run.ExitCode == 0, $"node batch.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        var result = JsonDocument.Parse(run.Output.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("completed", result.GetProperty("status").GetString());
        Assert.Equal(6, result.GetProperty("request_counts").GetProperty("completed").GetInt32());
        Assert.Equal(ids, result.GetProperty("custom_ids").EnumerateArray().Select(e => e.GetString()!).Order());
    }

    /// <summary>Issue 22: <c>sdk/refusals.mjs</c> sends, through the SDK's own <c>batches.create</c>, metadata past
    /// OpenAI's limits and a completion window other than 24h; each is a 400 the SDK reads as OpenAI's.</summary>
    [Fact]
    public async Task OpenAiNodeSdk_metadataPastTheLimitsOrAnotherWindow_isA400TheSdkReads()
    {
        await EnsureSdkAsync();
        var input = Path.Combine(server.DataPath, "sdk-refusals.jsonl");
        await File.WriteAllTextAsync(input, Api.ChatLines("sdk-r-1"));

        var run = await RunAsync("node", ["refusals.mjs", input], new()
        {
            ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
            ["OPENAI_API_KEY"] = ServerFixture.Keys[8],
        }, TimeSpan.FromSeconds(60));

        Assert.True(run.ExitCode == 0, $"node refusals.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        var results = run.Output.Trim().Split('\n').Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(
            [("metadata: 17 pairs", 400, "metadata"), ("metadata: a key of 65 characters", 400, "metadata"),
             ("metadata: a value of 513 characters", 400, "metadata"), ("completion_window: 1h", 400, "completion_window")],
            results.Select(r => (r.GetProperty("case").GetString()!, r.GetProperty("status").GetInt32(),
                r.TryGetProperty("param", out var p) ? p.GetString() : null)));
        Assert.All(results, r => Assert.Equal("invalid_request_error", r.GetProperty("type").GetString()));
    }

    /// <summary>Issue 23: <c>sdk/json_schema.mjs</c> sends chat lines with <c>response_format</c> json_schema (strict) and
    /// json_object through the SDK: every schema output parses and fits the schema, the json_object one parses as an
    /// object, and a schema keyword outside the subset is an <c>unsupported_parameter</c> error line naming it.</summary>
    [Fact]
    public async Task OpenAiNodeSdk_responseFormatJsonSchema_outputsParseAndFitTheSchema()
    {
        await EnsureSdkAsync();
        var input = Path.Combine(server.DataPath, "sdk-json-schema.jsonl");

        var run = await RunAsync("node", ["json_schema.mjs", input], new()
        {
            ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
            ["OPENAI_API_KEY"] = ServerFixture.Keys[7],
        }, TimeSpan.FromSeconds(90));

        Assert.True(run.ExitCode == 0, $"node json_schema.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        var lines = run.Output.Trim().Split('\n').Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(l => l.GetProperty("custom_id").GetString()!);
        Assert.Equal(["object", "schema-greedy", "schema-sampled", "unsupported"], lines.Keys.Order());
        foreach (var id in new[] { "schema-greedy", "schema-sampled" })
        {
            Assert.Equal("stop", lines[id].GetProperty("finish_reason").GetString());
            var reading = JsonDocument.Parse(lines[id].GetProperty("content").GetString()!).RootElement;
            Assert.Equal(["kind", "n", "ok", "x"], reading.EnumerateObject().Select(p => p.Name).Order());
            Assert.True(reading.GetProperty("x").TryGetInt64(out _), reading.ToString());
            Assert.Contains(reading.GetProperty("ok").ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
            Assert.Contains(reading.GetProperty("kind").GetString(), new[] { "a", "b" });
            Assert.Equal(JsonValueKind.Null, reading.GetProperty("n").ValueKind);
        }
        Assert.Equal("stop", lines["object"].GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(lines["object"].GetProperty("content").GetString()!).RootElement.ValueKind);
        Assert.Equal("unsupported_parameter", lines["unsupported"].GetProperty("error_code").GetString());
        Assert.Contains("\"maxLength\"", lines["unsupported"].GetProperty("message").GetString());
    }

    private static async Task EnsureSdkAsync()
    {
        if (Directory.Exists(Path.Combine(SdkFolder, "node_modules", "openai"))) return;
        var install = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], [], TimeSpan.FromMinutes(3));
        Assert.True(install.ExitCode == 0, $"npm ci failed ({install.ExitCode}): {install.Error}");
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(
        string program, string[] args, Dictionary<string, string> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = SdkFolder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, await output, $"timed out after {timeout}: {await error}");
        }
        return (process.ExitCode, await output, await error);
    }
}
