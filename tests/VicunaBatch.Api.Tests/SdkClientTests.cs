using Xunit.Abstractions;
using System.Diagnostics;
using System.Text.Json;
using VicunaBatch.Testing;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Issue 4's acceptance test: <c>sdk/batch.mjs</c> uses the OpenAI Node SDK unchanged (only baseURL and apiKey)
/// to upload, create, poll to completed and download. Installs the SDK (<c>npm ci</c>) when node_modules is missing.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SdkClientTests(ServerFixture server, ITestOutputHelper log)
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
    /// object, and a line whose schema has a keyword outside the subset is an <c>unsupported_parameter</c> error line naming
    /// the keyword while the rest run.</summary>
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
        Assert.Contains("the keyword \"maxLength\"", lines["unsupported"].GetProperty("message").GetString());
    }

    /// <summary>Issue 23: <c>sdk/files.mjs</c> runs the Files methods through the SDK unchanged — upload with
    /// <c>expires_after</c>, <c>files.list</c> with its auto-pagination, <c>files.delete</c>, a batch with
    /// <c>output_expires_after</c> — and each answer has the shape and values OpenAI's would.</summary>
    [Fact]
    public async Task OpenAiNodeSdk_filesListDeleteAndExpiry_workAsAgainstOpenAi()
    {
        await EnsureSdkAsync();
        var input = Path.Combine(server.DataPath, "sdk-files.jsonl");
        await File.WriteAllTextAsync(input, Api.ChatLines("sdk-f-1", "sdk-f-2"));

        var run = await RunAsync("node", ["files.mjs", input], new()
        {
            ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
            ["OPENAI_API_KEY"] = ServerFixture.Keys[10],
        }, TimeSpan.FromSeconds(90));

        Assert.True(run.ExitCode == 0, $"node files.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        var result = JsonDocument.Parse(run.Output.Trim().Split('\n')[^1]).RootElement;
        var uploaded = result.GetProperty("uploaded").EnumerateArray().ToList();
        Assert.Equal([3600L, 7200L, 10800L], uploaded.Select(f => f.GetProperty("expires_at").GetInt64() - f.GetProperty("created_at").GetInt64()));
        var ids = uploaded.Select(f => f.GetProperty("id").GetString()!).ToList();
        var newestFirst = Enumerable.Reverse(ids).ToList();
        Assert.Equal(newestFirst[..2], Strings(result.GetProperty("first_page").GetProperty("ids")));
        Assert.True(result.GetProperty("first_page").GetProperty("has_more").GetBoolean());
        Assert.Equal(newestFirst, Strings(result.GetProperty("listed"))); // for await: pages of 2, then of 1
        Assert.Equal(ids, Strings(result.GetProperty("ascending"))); // pages of 1, oldest first

        var batch = result.GetProperty("batch");
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        var output = result.GetProperty("output");
        Assert.Equal("batch_output", output.GetProperty("purpose").GetString());
        Assert.Equal(output.GetProperty("created_at").GetInt64() + 7200, output.GetProperty("expires_at").GetInt64());

        Assert.Equal($$"""{"id":"{{ids[1]}}","object":"file","deleted":true}""", result.GetProperty("deleted").GetRawText());
        Assert.Equal(404, result.GetProperty("retrieve_deleted").GetProperty("status").GetInt32());
        Assert.Equal(404, result.GetProperty("delete_again").GetProperty("status").GetInt32());
        Assert.Equal(
            new[] { ids[0], ids[2], batch.GetProperty("output_file_id").GetString()!, batch.GetProperty("error_file_id").GetString()! }.Order(),
            Strings(result.GetProperty("after_delete")).Order());
        Assert.Equal(400, result.GetProperty("too_short").GetProperty("status").GetInt32());
        Assert.Equal("expires_after.seconds", result.GetProperty("too_short").GetProperty("param").GetString());
    }

    private static List<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToList();

    /// <summary>
    /// Issue 23: <c>sdk/lifecycle.mjs</c> drives the batch lifecycle through the SDK. A file with no valid line makes a batch
    /// that fails with <c>errors.data</c>; a running batch's counts and usage move before it ends and it passes through
    /// finalizing; its output and error lines have OpenAI's shape with every key the SDK types name; a 409 is not retried.
    /// </summary>
    [Fact]
    public async Task OpenAiNodeSdk_batchLifecycle_failsInvalidInputMovesCountsShapesLinesAndDoesNotRetryA409()
    {
        await EnsureSdkAsync();
        var invalid = Path.Combine(server.DataPath, "sdk-lifecycle-invalid.jsonl");
        await File.WriteAllTextAsync(invalid, "{not json\n[1, 2]\n"); // no valid line
        var valid = Path.Combine(server.DataPath, "sdk-lifecycle.jsonl");
        // max_tokens rising line by line: the requests end one after another, not all in the engine's last step (sampled
        // at temperature 2, where the trained tiny model seldom picks EOS, so each runs to its max_tokens)
        await File.WriteAllTextAsync(valid, string.Concat(Enumerable.Range(0, 40).Select(i =>
            $$$"""{"custom_id":"l-{{{i}}}","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"count {{{i}}}"}],"max_tokens":{{{8 + 6 * i}}},"temperature":2,"seed":{{{i}}}}}""" + "\n"))
            + $$$"""{"custom_id":"too-long","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"{{{string.Concat(Enumerable.Repeat("word ", 6000))}}}"}]}}""" + "\n");

        var run = await RunAsync("node", ["lifecycle.mjs", invalid, valid], new()
        {
            ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
            ["OPENAI_API_KEY"] = ServerFixture.Keys[13],
        }, TimeSpan.FromSeconds(180));

        Assert.True(run.ExitCode == 0, $"node lifecycle.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        foreach (var line in run.Output.Trim().Split('\n')) log.WriteLine(line.Length > 600 ? line[..600] + "…" : line);
        var steps = run.Output.Trim().Split('\n').Select(l => JsonDocument.Parse(l).RootElement).ToDictionary(s => s.GetProperty("step").GetString()!);
        AssertFailedValidation(steps["invalid"]);
        AssertRan(steps["run"]);
        var cancel = steps["cancel_completed"];
        Assert.Equal((409, "batch_not_cancellable", 1), (cancel.GetProperty("status").GetInt32(), cancel.GetProperty("code").GetString(), cancel.GetProperty("num_requests").GetInt32()));
        Assert.Matches("^req_[0-9a-f]{32}$", cancel.GetProperty("request_id").GetString());
    }

    private static void AssertFailedValidation(JsonElement step)
    {
        Assert.Equal("failed", step.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Number, step.GetProperty("failed_at").ValueKind);
        Assert.Equal("list", step.GetProperty("errors").GetProperty("object").GetString());
        Assert.Equal([("invalid_json", 1), ("not_an_object", 2)], step.GetProperty("errors").GetProperty("data").EnumerateArray()
            .Select(e => (e.GetProperty("code").GetString(), e.GetProperty("line").GetInt32())));
    }

    private static void AssertRan(JsonElement step)
    {
        var statuses = step.GetProperty("statuses").EnumerateArray().Select(s => s.GetString()!).ToList();
        Assert.Contains("in_progress", statuses);
        Assert.Equal("completed", statuses[^1]);
        Assert.Matches("^req_[0-9a-f]{32}$", step.GetProperty("request_id").GetString());
        // counts and usage moved before the end, within the one shard
        Assert.Contains(step.GetProperty("partial").EnumerateArray(), seen => seen[1].GetInt32() > 0);
        Assert.Equal(JsonValueKind.Number, step.GetProperty("finalizing_at").ValueKind);
        Assert.Equal((41, 40, 1), (step.GetProperty("request_counts").GetProperty("total").GetInt32(),
            step.GetProperty("request_counts").GetProperty("completed").GetInt32(), step.GetProperty("request_counts").GetProperty("failed").GetInt32()));
        var output = step.GetProperty("output").EnumerateArray().ToList();
        Assert.Equal(40, output.Count);
        Assert.All(output, line =>
        {
            Assert.StartsWith("batch_req_", line.GetProperty("id").GetString());
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var body = line.GetProperty("response").GetProperty("body");
            var choice = body.GetProperty("choices")[0];
            Assert.Equal((JsonValueKind.Null, JsonValueKind.Null), (choice.GetProperty("logprobs").ValueKind, choice.GetProperty("message").GetProperty("refusal").ValueKind));
            Assert.Equal(0, body.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
            Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
            Assert.StartsWith("fp_", body.GetProperty("system_fingerprint").GetString());
        });
        var error = Assert.Single(step.GetProperty("errors").EnumerateArray());
        Assert.Equal(("too-long", 400, JsonValueKind.Null), (error.GetProperty("custom_id").GetString(),
            error.GetProperty("response").GetProperty("status_code").GetInt32(), error.GetProperty("error").ValueKind));
        var body = error.GetProperty("response").GetProperty("body").GetProperty("error");
        Assert.Equal(("context_length_exceeded", "invalid_request_error", "messages"),
            (body.GetProperty("code").GetString(), body.GetProperty("type").GetString(), body.GetProperty("param").GetString()));
    }

    /// <summary>
    /// Issue 23: <c>sdk/models.mjs</c> runs the SDK's Models methods against a serve of two models, then a batch whose
    /// lines name the second (it runs there: its outputs and the batch name it) and one naming a model nobody serves
    /// (failed, <c>model_not_found</c>), and lists the tenant's batches with the SDK's auto-pagination.
    /// </summary>
    [Fact]
    public async Task OpenAiNodeSdk_modelsAndABatchPerModel_listsBothAndRunsEachBatchOnItsModel()
    {
        await EnsureSdkAsync();
        var second = Path.Combine(server.DataPath, "sdk-second-model.jsonl");
        var unknown = Path.Combine(server.DataPath, "sdk-unknown-model.jsonl");
        await File.WriteAllTextAsync(second, WithModel(Api.ChatLines("m-1", "m-2", "m-3"), ServerFixture.SecondModel));
        await File.WriteAllTextAsync(unknown, WithModel(Api.ChatLines("u-1"), "gpt-4o-mini"));

        var run = await RunAsync("node", ["models.mjs", second, unknown], new()
        {
            ["OPENAI_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString(),
            ["OPENAI_API_KEY"] = ServerFixture.Keys[9],
        }, TimeSpan.FromSeconds(90));

        Assert.True(run.ExitCode == 0, $"node models.mjs failed ({run.ExitCode}): {run.Error}\n{run.Output}");
        var result = JsonDocument.Parse(run.Output.Trim().Split('\n')[^1]).RootElement;
        string[] served = ["tiny", ServerFixture.SecondModel];
        Assert.Equal(served, result.GetProperty("listed").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.All(result.GetProperty("listed").EnumerateArray(), m => Assert.Equal("model", m.GetProperty("object").GetString()));
        Assert.Equal(served, result.GetProperty("retrieved").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal((404, "model_not_found", "NotFoundError"), Failure(result.GetProperty("missing")));
        Assert.Equal((403, "permission_denied", "PermissionDeniedError"), Failure(result.GetProperty("delete")));
        var batch = result.GetProperty("batch");
        Assert.Equal(("completed", ServerFixture.SecondModel), (batch.GetProperty("status").GetString(), batch.GetProperty("model").GetString()));
        Assert.Equal(Enumerable.Repeat(ServerFixture.SecondModel, 3), batch.GetProperty("output_models").EnumerateArray().Select(m => m.GetString()));
        var failed = result.GetProperty("unknown");
        Assert.Equal(("failed", "gpt-4o-mini"), (failed.GetProperty("status").GetString(), failed.GetProperty("model").GetString()));
        var error = Assert.Single(failed.GetProperty("errors").EnumerateArray());
        Assert.Equal(("model_not_found", "body.model", 1), (error.GetProperty("code").GetString(), error.GetProperty("param").GetString(), error.GetProperty("line").GetInt32()));
        // batches.list, paged one by one by the SDK: this tenant's two batches, newest first
        Assert.Equal([failed.GetProperty("id").GetString(), batch.GetProperty("id").GetString()],
            result.GetProperty("batches").EnumerateArray().Select(b => b.GetString()));
    }

    private static string WithModel(string lines, string model) => lines.Replace("\"body\":{", $"\"body\":{{\"model\":\"{model}\",");

    private static (int, string?, string?) Failure(JsonElement failure) =>
        (failure.GetProperty("status").GetInt32(), failure.GetProperty("code").GetString(), failure.GetProperty("name").GetString());

    internal static async Task EnsureSdkAsync()
    {
        if (Directory.Exists(Path.Combine(SdkFolder, "node_modules", "openai"))) return;
        var install = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], [], TimeSpan.FromMinutes(3));
        Assert.True(install.ExitCode == 0, $"npm ci failed ({install.ExitCode}): {install.Error}");
    }

    internal static async Task<(int ExitCode, string Output, string Error)> RunAsync(
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
