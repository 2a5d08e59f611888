using System.CommandLine;
using System.Text.Json.Nodes;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>submit</c>, <c>status</c> and <c>results</c>: a bulk file to the batch API of a running <c>serve</c> or of the
/// Function App on Azure (the same endpoints), its progress, and its files back. The address and key come from
/// <c>--url</c> / <c>--api-key-file</c> (or <c>--api-key</c>, which every user's <c>ps</c> shows) or <c>VICUNABATCH_URL</c> /
/// <c>VICUNABATCH_API_KEY</c>.
/// </summary>
internal static class ClientCommands
{
    public const string UrlVariable = "VICUNABATCH_URL";
    public const string KeyVariable = "VICUNABATCH_API_KEY";
    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <summary>How often <c>submit --wait</c> asks for the batch.</summary>
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);

    private static readonly string[] Endpoints = [BatchEndpoints.ChatCompletionsUrl, BatchEndpoint.Completions.ToUrl()];

    public static IEnumerable<Command> Create() => [Submit(), Status(), Results(), Cancel()];

    /// <summary>How many batches <c>status</c> without an id lists.</summary>
    private const int ListLimit = 20;

    private static Command Submit()
    {
        var server = new ServerOptions();
        var file = new Argument<FileInfo>("FILE") { Description = "Prompts: JSONL (OpenAI Batch lines or {\"prompt\" | \"messages\", ...}) or .txt (one prompt per line)." };
        var endpoint = new Option<string?>("--endpoint") { Description = "/v1/chat/completions or /v1/completions. Default: the request lines' (a file with lines for both is refused: a batch has one endpoint)." };
        var webhook = new Option<string?>("--webhook") { Description = "URL that gets the signed event when the batch ends (its secret is printed once)." };
        var metadata = new Option<string[]>("--metadata")
        {
            Description = $"KEY=VALUE kept with the batch (repeatable; at most {MetadataLimits.MaxPairs} pairs, keys of at most {MetadataLimits.MaxKeyLength} characters, values of at most {MetadataLimits.MaxValueLength})."
        };
        var wait = new Option<bool>("--wait") { Description = "Wait for the batch to end, with progress, then download its files as `results` does." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "With --wait: where the files go. Default: ./results/<batch id>/" };
        var command = new Command("submit", "Submit a bulk prompt file to the batch API (serve, or the Function App); prints the batch id.")
        {
            file, endpoint, webhook, metadata, wait, output,
        };
        server.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var input = r.GetValue(file)!;
            if (Directory.Exists(input.FullName)) throw new UsageException($"{input.FullName} is a folder; give a prompt file (.jsonl, or .txt with one prompt a line)");
            if (!input.Exists) throw new UsageException($"input file not found: {input.FullName}");
            if (r.GetValue(endpoint) is { } requested && !Endpoints.Contains(requested))
                throw new UsageException($"--endpoint {requested}: must be one of {string.Join(", ", Endpoints)}");
            var url = BatchApiClient.EndpointFor(input.FullName, r.GetValue(endpoint));
            var pairs = ParseMetadata(r.GetValue(metadata) ?? []);
            using var client = server.Client(r);

            var fileId = await client.UploadAsync(input.FullName, cancellationToken);
            var created = await client.CreateBatchAsync(fileId, url, r.GetValue(webhook), pairs, cancellationToken);
            var batchId = created["id"]?.GetValue<string>() ?? throw new ApiClientException("the server's batch object has no id");
            Console.Out.WriteLine(batchId);
            Console.Error.WriteLine($"batch {batchId}: {input.Name} ({fileId}, {url}) submitted to {client.BaseUrl}");
            if (created["webhook"]?["secret"]?.GetValue<string>() is { } secret)
            {
                Console.Error.WriteLine($"webhook secret (shown once; the events are signed with it): {secret}");
            }
            if (ToJob(created) is { Status: JobStatus.Failed } failed)
            {
                // the input did not validate: the batch failed at create, with nothing to run or download
                Console.Error.WriteLine($"{StatusLine(failed)}: the input did not validate");
                foreach (var error in failed.Errors?.Data ?? []) Console.Error.WriteLine($"  line {error.Line}: {error.Code}: {error.Message}");
                return 1;
            }
            if (!r.GetValue(wait)) return 0;
            return await WaitAndDownloadAsync(client, batchId, r.GetValue(output)?.FullName, cancellationToken);
        });
        return command;
    }

    private static Command Status()
    {
        var server = new ServerOptions();
        var batch = new Argument<string?>("BATCH_ID") { Description = $"The id submit printed (batch_...). None: the latest {ListLimit} batches.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print the batch object (or list) as the API returns it." };
        var command = new Command("status", "Show a submitted batch's status and counts, or list the latest batches.") { batch, json };
        server.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            using var client = server.Client(r);
            if (r.GetValue(batch) is not { } batchId)
            {
                var list = await client.ListBatchesAsync(ListLimit, cancellationToken);
                if (r.GetValue(json))
                {
                    Console.Out.WriteLine(list.ToJsonString(new JsonSerializerOptions(JsonOutput.Options) { WriteIndented = true }));
                    return 0;
                }
                var batches = list["data"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
                if (batches.Count == 0) Console.Out.WriteLine("no batches yet");
                foreach (var item in batches) Console.Out.WriteLine(StatusLine(ToJob(item)));
                return 0;
            }
            var node = await client.GetBatchAsync(batchId, cancellationToken);
            if (r.GetValue(json))
            {
                Console.Out.WriteLine(node.ToJsonString(new JsonSerializerOptions(JsonOutput.Options) { WriteIndented = true }));
                return 0;
            }
            var job = ToJob(node);
            Console.Out.WriteLine(StatusLine(job));
            foreach (var error in job.Errors?.Data ?? []) Console.Out.WriteLine($"  {error.Code}: {error.Message}");
            return 0;
        });
        return command;
    }

    private static Command Results()
    {
        var server = new ServerOptions();
        var batch = new Argument<string>("BATCH_ID") { Description = "The id submit printed (batch_...)." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Where output.jsonl, errors.jsonl and job.json go. Default: ./results/<batch id>/" };
        var command = new Command("results", "Download an ended batch's output.jsonl, errors.jsonl and job.json.") { batch, output };
        server.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            using var client = server.Client(r);
            var batchId = r.GetValue(batch)!;
            var node = await client.GetBatchAsync(batchId, cancellationToken);
            var job = ToJob(node);
            if (!HasEnded(job))
            {
                Console.Error.WriteLine($"{StatusLine(job)}: not ended, so no files yet; run this again when it has, or wait with `submit --wait`");
                return 1;
            }
            return await DownloadAsync(client, node, job, r.GetValue(output)?.FullName, cancellationToken);
        });
        return command;
    }

    private static Command Cancel()
    {
        var server = new ServerOptions();
        var batch = new Argument<string>("BATCH_ID") { Description = "The id submit printed (batch_...)." };
        var command = new Command("cancel", "Cancel a submitted batch: requests not started are not run; what finished stays in its files.") { batch };
        server.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            using var client = server.Client(r);
            Console.Out.WriteLine(StatusLine(ToJob(await client.CancelBatchAsync(r.GetValue(batch)!, cancellationToken))));
            return 0;
        });
        return command;
    }

    /// <summary>Polls until the batch ends (progress on stderr), then downloads its files. Ctrl+C stops the waiting, not the batch.</summary>
    private static async Task<int> WaitAndDownloadAsync(BatchApiClient client, string batchId, string? outDir, CancellationToken cancellationToken)
    {
        try
        {
            var (node, job) = await WaitForEndAsync(client, batchId, cancellationToken);
            return await DownloadAsync(client, node, job, outDir, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Console.Error.WriteLine($"stopped waiting; the batch goes on. Its files, once it ends: vicuna-batch results {batchId}");
            return 130;
        }
    }

    /// <summary>Polls the batch until it has ended, its progress on stderr as <c>run</c> shows a job's; the batch object as it ended.</summary>
    internal static async Task<(JsonObject Node, BatchJob Job)> WaitForEndAsync(BatchApiClient client, string batchId, CancellationToken cancellationToken)
    {
        ProgressLine? progress = null;
        try
        {
            while (true)
            {
                var node = await client.GetBatchAsync(batchId, cancellationToken);
                var job = ToJob(node);
                var counts = job.RequestCounts;
                if (counts.Total > 0)
                {
                    progress ??= new ProgressLine(counts.Total);
                    progress.Report(counts.Completed + counts.Failed, job.Usage.OutputTokens, counts.Failed);
                }
                if (HasEnded(job)) return (node, job);
                await Task.Delay(PollInterval, cancellationToken);
            }
        }
        finally
        {
            progress?.Clear();
        }
    }

    private static async Task<int> DownloadAsync(BatchApiClient client, JsonObject node, BatchJob job, string? outDir, CancellationToken cancellationToken)
    {
        var folder = Path.GetFullPath(outDir ?? Path.Combine("results", job.Id));
        if (File.Exists(folder)) throw new UsageException($"--out {folder} is a file; give a folder (it is made if missing)");
        await DownloadFilesAsync(client, node, job, folder, cancellationToken);
        Console.Out.WriteLine(StatusLine(job));
        foreach (var error in job.Errors?.Data ?? []) Console.Out.WriteLine($"  {error.Code}: {error.Message}");
        foreach (var name in new[] { "output.jsonl", "errors.jsonl", "job.json" }) Console.Out.WriteLine($"  {Path.Combine(folder, name)}");
        return RunCommand.ExitCodeOf(job);
    }

    /// <summary>An ended batch's <c>output.jsonl</c> and <c>errors.jsonl</c> (empty when it has none) and its object as <c>job.json</c>, into <paramref name="folder"/>.</summary>
    internal static async Task DownloadFilesAsync(BatchApiClient client, JsonObject node, BatchJob job, string folder, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(folder);
        foreach (var (fileId, name) in new[] { (job.OutputFileId, "output.jsonl"), (job.ErrorFileId, "errors.jsonl") })
        {
            var target = Path.Combine(folder, name);
            if (fileId is null) await File.WriteAllBytesAsync(target, [], cancellationToken); // none: nothing went there
            else await client.DownloadAsync(fileId, target, cancellationToken);
        }
        await File.WriteAllTextAsync(Path.Combine(folder, "job.json"), node.ToJsonString(new JsonSerializerOptions(JsonOutput.Options) { WriteIndented = true }), cancellationToken);
    }

    /// <summary>
    /// Ended, with its files named: an expired job is saved expired a moment before its files are written (so a late
    /// shard cannot complete it meanwhile), and until then it still counts the requests it was given and names no file.
    /// </summary>
    internal static bool HasEnded(BatchJob job) =>
        JobStateMachine.IsTerminal(job.Status) && !(job is { Status: JobStatus.Expired, OutputFileId: null, RequestCounts.Total: > 0 });

    internal static string StatusLine(BatchJob job)
    {
        var c = job.RequestCounts;
        return FormattableString.Invariant(
            $"{job.Id} {job.Status.SnakeCase()}: {c.Completed} succeeded, {c.Failed} failed of {c.Total} ({job.Usage.OutputTokens} output tokens)");
    }

    /// <summary>The API's batch object is the job's own shape (plus webhook and file details, not needed here).</summary>
    internal static BatchJob ToJob(JsonObject node)
    {
        try
        {
            return node.Deserialize<BatchJob>(JobsJson.Options) ?? throw new ApiClientException("the server's batch object is null");
        }
        catch (JsonException e)
        {
            throw new ApiClientException($"the server's batch object does not read as one: {e.Message}");
        }
    }

    private static Dictionary<string, string> ParseMetadata(IEnumerable<string> pairs)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var at = pair.IndexOf('=');
            if (at <= 0) throw new UsageException($"--metadata {pair}: give KEY=VALUE");
            metadata[pair[..at]] = pair[(at + 1)..];
        }
        // the API's limits, said before anything is uploaded
        if (MetadataLimits.Check(metadata) is { } problem) throw new UsageException($"--metadata: {problem}");
        return metadata;
    }

    /// <summary>
    /// --url and --api-key (or --api-key-file), or their environment variables. <paramref name="urlFlag"/> names the
    /// address's flag (<c>eval judge</c>'s is <c>--judge-url</c>), <paramref name="urlDescription"/> says what it is;
    /// without <paramref name="urlDefaulted"/> only the flag gives it (<c>eval answer</c> runs here without one).
    /// </summary>
    internal sealed class ServerOptions(
        string urlFlag = "--url", string urlDescription = "The batch API's base URL (serve's, or the Function App's).", bool urlDefaulted = true)
    {
        private readonly Option<string?> _url = new(urlFlag)
        {
            Description = urlDefaulted ? $"{urlDescription} Default: ${UrlVariable}, else {DefaultUrl}" : urlDescription,
        };
        private readonly Option<string?> _apiKey = new("--api-key") { Description = $"Bearer key; every user's ps shows it: prefer {ApiKeyFile.Flag} or ${KeyVariable}, the default." };
        private readonly Option<FileInfo?> _apiKeyFile = new(ApiKeyFile.Flag)
        {
            Description = "File holding the bearer key (one line; # comments skipped); refused when group or others may read it (chmod 600).",
        };

        public void AddTo(Command command)
        {
            command.Options.Add(_url);
            command.Options.Add(_apiKey);
            command.Options.Add(_apiKeyFile);
        }

        /// <summary>Whether the command line gives the address (<c>eval answer</c> runs its models here without one).</summary>
        public bool UrlGiven(ParseResult r) => r.GetValue(_url) is not null;

        public BatchApiClient Client(ParseResult r)
        {
            var url = r.GetValue(_url) ?? Environment.GetEnvironmentVariable(UrlVariable) ?? DefaultUrl;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                throw new UsageException($"{urlFlag} {url}: give the API's http(s) base URL, e.g. {DefaultUrl}");
            }
            return new BatchApiClient(uri, Key(r));
        }

        /// <summary>--api-key (said to be in the process list), else --api-key-file, else the environment.</summary>
        private string Key(ParseResult r)
        {
            var given = r.GetValue(_apiKey);
            var file = r.GetValue(_apiKeyFile);
            if (given is not null && file is not null) throw new UsageException($"give --api-key or {ApiKeyFile.Flag}, not both");
            if (given is not null) Console.Error.WriteLine(ApiKeyFile.CommandLineWarning(KeyVariable));
            var key = given ?? (file is not null ? OneKeyOf(file.FullName) : Environment.GetEnvironmentVariable(KeyVariable));
            if (string.IsNullOrWhiteSpace(key))
            {
                throw new UsageException(
                    $"no API key: give {ApiKeyFile.Flag} FILE, set {KeyVariable} or give --api-key (serve prints the key it made when given none)");
            }
            return key;
        }

        private static string OneKeyOf(string path)
        {
            var keys = ApiKeyFile.Read(path);
            return keys.Count == 1 ? keys[0] : throw new UsageException($"{ApiKeyFile.Flag} {path} holds {keys.Count} keys; a client sends one: give a file with one");
        }
    }
}
