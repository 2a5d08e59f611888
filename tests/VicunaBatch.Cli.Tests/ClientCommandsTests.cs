using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Local.Tests.Webhooks;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// <c>submit</c>, <c>status</c> and <c>results</c> as the compiled program against a real <c>serve</c> on 127.0.0.1
/// (the Function App serves the same endpoints): a file in, its files back, whole by <c>check</c>; a signed webhook
/// with the secret submit printed; and each way the API can refuse, in one line.
/// </summary>
public sealed class ClientCommandsTests : IDisposable
{
    private const string ApiKey = "vb-test-key-client-7d1f";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string WriteChatInput(int count) => _folder.WriteInput("chat.jsonl", Enumerable.Range(0, count).Select(i =>
        $$"""{"custom_id":"q{{i}}","messages":[{"role":"user","content":"Question {{i}} about the night batch"}],"max_tokens":{{4 + i % 5}}}"""));

    /// <summary>The key goes in the environment, as the README advises: on the command line every user's <c>ps</c> shows it.</summary>
    private async Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(ServeProcess serve, params string[] args) =>
        await CliProcess.RunAsync(_folder.Root, Timeout, KeyInEnvironment(ApiKey), [.. args, "--url", serve.Http.BaseAddress!.ToString()]);

    private static Dictionary<string, string> KeyInEnvironment(string key) => new() { ["VICUNABATCH_API_KEY"] = key };

    [Fact]
    public async Task Submit_wait_downloads_whole_results_and_status_and_results_agree()
    {
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey);
        var input = WriteChatInput(12);

        var submitted = await CliAsync(serve, "submit", input, "--wait", "--out", _folder.Out, "--metadata", "team=docs");

        Assert.True(submitted.ExitCode == 0, submitted.Stderr);
        var batchId = submitted.Stdout.Split('\n')[0].Trim();
        Assert.StartsWith("batch_", batchId);
        Assert.StartsWith($"{batchId} completed: 12 succeeded, 0 failed of 12", submitted.Stdout.Split('\n')[1]);
        Assert.Empty((await CheckCommand.CheckAsync(input, _folder.Out, null)).Problems);
        var job = JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement;
        Assert.Equal(("completed", "/v1/chat/completions", "docs"),
            (job.GetProperty("status").GetString(), job.GetProperty("endpoint").GetString(), job.GetProperty("metadata").GetProperty("team").GetString()));

        var status = await CliAsync(serve, "status", batchId);
        Assert.Equal(0, status.ExitCode);
        Assert.StartsWith($"{batchId} completed: 12 succeeded, 0 failed of 12 (", status.Stdout);
        var list = await CliAsync(serve, "status");
        Assert.Equal((0, status.Stdout), (list.ExitCode, list.Stdout)); // the one batch of this key

        var again = Path.Combine(_folder.Root, "again");
        var results = await CliAsync(serve, "results", batchId, "--out", again);
        Assert.True(results.ExitCode == 0, results.Stderr);
        Assert.Equal(File.ReadAllBytes(_folder.OutputPath), File.ReadAllBytes(Path.Combine(again, "output.jsonl")));
    }

    [Fact]
    public async Task Submit_infers_the_completions_endpoint_of_prompt_lines_and_the_webhook_is_signed_with_the_printed_secret()
    {
        await using var receiver = new LoopbackReceiver();
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey);
        var input = _folder.WriteInput("prompts.txt", ["The night batch", "The morning report"]);

        var submitted = await CliAsync(serve, "submit", input, "--wait", "--out", _folder.Out, "--webhook", receiver.Url);

        Assert.True(submitted.ExitCode == 0, submitted.Stderr);
        var secret = submitted.Stderr.Split('\n').Select(l => l.Trim())
            .Single(l => l.StartsWith("webhook secret (shown once; the events are signed with it): ", StringComparison.Ordinal)).Split(": ")[1];
        Assert.Equal("/v1/completions", JsonDocument.Parse(File.ReadAllText(_folder.JobPath)).RootElement.GetProperty("endpoint").GetString());
        for (var i = 0; i < 300 && receiver.Requests.IsEmpty; i++) await Task.Delay(100);
        var request = Assert.Single(receiver.Requests);
        Assert.Equal(WebhookVerifyResult.Valid,
            WebhookSigner.Verify(secret, new WebhookHeaders(request.Id!, request.Timestamp!, request.Signature!), Encoding.UTF8.GetString(request.Body), DateTimeOffset.UtcNow));
        Assert.Equal("batch.completed", JsonDocument.Parse(request.Body).RootElement.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Cancel_stops_a_long_batch_and_its_results_hold_what_ran_and_a_batch_cancelled_line_for_the_rest()
    {
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey);
        // ~5 million tokens: minutes on any CPU, so the cancel lands while it runs
        const int count = 20_000;
        var input = _folder.WriteInput("long.jsonl", Enumerable.Range(0, count).Select(i => $$"""{"custom_id":"r{{i}}","prompt":"line {{i}}","max_tokens":256}"""));
        var submitted = await CliAsync(serve, "submit", input);
        Assert.True(submitted.ExitCode == 0, submitted.Stderr);
        var batchId = submitted.Stdout.Trim();

        var cancel = await CliAsync(serve, "cancel", batchId);
        Assert.True(cancel.ExitCode == 0, cancel.Stderr);
        Assert.StartsWith($"{batchId} cancelling: ", cancel.Stdout);

        // the shards already running finish; the rest are not run, so it ends in seconds, not minutes
        var clock = System.Diagnostics.Stopwatch.StartNew();
        (int ExitCode, string Stdout, string Stderr) results;
        while ((results = await CliAsync(serve, "results", batchId, "--out", _folder.Out)).ExitCode != 0 && results.Stdout.Length == 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"still not cancelled after a minute: {results.Stderr}");
            await Task.Delay(500);
        }
        Assert.Equal(1, results.ExitCode); // a cancelled batch is not a success
        Assert.StartsWith($"{batchId} cancelled: ", results.Stdout);
        var check = await CheckCommand.CheckAsync(input, _folder.Out, null);
        Assert.True(check.Problems.Count == 0, string.Join("\n", check.Problems.Take(5))); // every line once, in one of the two files
        var ran = RunFolder.ReadJsonLines(_folder.OutputPath).Count;
        var notRun = RunFolder.ReadJsonLines(_folder.ErrorsPath).Where(e => ErrorLines.CodeOf(e) == "batch_cancelled").Count();
        Assert.True(ran < count / 2, $"{ran} of {count} ran after the cancel");
        Assert.Equal(count, ran + notRun);
    }

    [Fact]
    public async Task What_the_api_refuses_is_one_line_with_its_reason_and_nothing_is_downloaded()
    {
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey);
        var noValidLine = _folder.WriteInput("bad.jsonl", ["{\"custom_id\":\"a\",\"prompt\":\"x\",\"top_p\":7}", "{not json"]);

        // a file with no valid line makes a batch that fails at once, as at OpenAI: its reasons, and nothing downloaded
        var invalid = await CliAsync(serve, "submit", noValidLine, "--wait", "--out", _folder.Out);
        Assert.Equal(1, invalid.ExitCode);
        Assert.Matches("^batch_[0-9a-f]{32}$", invalid.Stdout.Trim());
        Assert.Contains($"{invalid.Stdout.Trim()} failed: 0 succeeded, 0 failed of 0 (0 output tokens): the input did not validate", invalid.Stderr);
        Assert.Contains("line 1: invalid_parameter", invalid.Stderr);
        Assert.Contains("line 2: invalid_json", invalid.Stderr);
        Assert.False(Directory.Exists(_folder.Out));

        // lines for both endpoints (run takes them; a batch has one): refused before anything is uploaded
        var data = Path.Combine(_folder.Root, "data", "blobs"); // uploads land in serve's blob store
        var filesBefore = Directory.GetFiles(data, "*", SearchOption.AllDirectories).Length;
        var mixed = _folder.WriteInput("mixed.jsonl", [
            "{\"prompt\":\"x\"}", "{\"messages\":[{\"role\":\"user\",\"content\":\"y\"}]}",
            "{\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"z\"}}"]);
        var refused = await CliAsync(serve, "submit", mixed, "--wait", "--out", _folder.Out);
        Assert.Equal((2, "vicuna-batch: mixed.jsonl has 2 lines for /v1/completions (the first on line 1) and 1 line for /v1/chat/completions "
            + "(the first on line 2); a batch has one endpoint: split the file by endpoint, or run it on this machine with `vicuna-batch run`, which takes both"),
            (refused.ExitCode, refused.Stderr.Trim()));
        var forced = await CliAsync(serve, "submit", mixed, "--endpoint", "/v1/chat/completions");
        Assert.Equal(2, forced.ExitCode);
        Assert.Contains("a batch for /v1/chat/completions takes only lines for it", forced.Stderr);
        Assert.Equal(filesBefore, Directory.GetFiles(data, "*", SearchOption.AllDirectories).Length);
        Assert.False(Directory.Exists(_folder.Out));

        var unknown = await CliAsync(serve, "status", "batch_nope");
        Assert.Equal((1, "vicuna-batch: 404 not found: No such batch: 'batch_nope'"), (unknown.ExitCode, unknown.Stderr.Trim()));

        var wrongKey = await CliProcess.RunAsync(_folder.Root, Timeout, KeyInEnvironment("wrong-key-123"), "status", "batch_nope", "--url", serve.Http.BaseAddress!.ToString());
        Assert.Equal((1, "vicuna-batch: 401 unauthorized (check --api-key): Incorrect API key provided."), (wrongKey.ExitCode, wrongKey.Stderr.Trim()));
    }

    [Fact]
    public async Task Without_a_key_or_a_server_the_error_says_which()
    {
        var noKey = await CliProcess.RunAsync(_folder.Root, Timeout, "status", "batch_x", "--url", "http://127.0.0.1:9");
        Assert.Equal((2, "vicuna-batch: no API key: give --api-key-file FILE, set VICUNABATCH_API_KEY or give --api-key (serve prints the key it made when given none)"),
            (noKey.ExitCode, noKey.Stderr.Trim()));

        // a port nothing listens on: LoopbackPorts hands out free ones
        var port = LoopbackPorts.Free();
        var unreachable = await CliProcess.RunAsync(_folder.Root, Timeout, KeyInEnvironment(ApiKey), "status", "batch_x", "--url", $"http://127.0.0.1:{port}");
        Assert.Equal(1, unreachable.ExitCode);
        Assert.StartsWith($"vicuna-batch: cannot reach http://127.0.0.1:{port}/: ", unreachable.Stderr.Trim());

        var badUrl = await CliProcess.RunAsync(_folder.Root, Timeout, KeyInEnvironment(ApiKey), "status", "batch_x", "--url", "ftp://x");
        Assert.Equal((2, "vicuna-batch: --url ftp://x: give the API's http(s) base URL, e.g. http://127.0.0.1:8080"), (badUrl.ExitCode, badUrl.Stderr.Trim()));
    }

    [Theory]
    [InlineData(17, 2, 1, "'metadata' may have at most 16 pairs; it has 17.")]
    [InlineData(1, 65, 1, "metadata key 'kkkkkkkkkkkkkkkkkkkk...' is 65 characters long; keys may be at most 64 characters.")]
    [InlineData(1, 1, 513, "metadata value of 'k' is 513 characters long; values may be at most 512 characters.")]
    public async Task Submit_metadata_past_OpenAIs_limits_is_refused_before_anything_is_sent(int numPairs, int keyLength, int valueLength, string message)
    {
        var input = WriteChatInput(1);
        var metadata = Enumerable.Range(0, numPairs).SelectMany(i => new[]
        {
            "--metadata", $"{new string('k', keyLength - (numPairs > 1 ? 2 : 0))}{(numPairs > 1 ? i.ToString("D2") : "")}={new string('v', valueLength)}",
        });
        // nothing listens on the port: a submit that got as far as uploading would say it cannot reach it
        var url = $"http://127.0.0.1:{LoopbackPorts.Free()}";

        var refused = await CliProcess.RunAsync(_folder.Root, Timeout, ["submit", input, .. metadata, "--url", url, "--api-key", ApiKey]);

        Assert.Equal((2, $"vicuna-batch: --metadata: {message}"), (refused.ExitCode, refused.Stderr.Trim()));
    }
}
