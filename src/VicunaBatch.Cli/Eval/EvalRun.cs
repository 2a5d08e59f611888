using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local;

namespace VicunaBatch.Cli.Eval;

/// <summary>What one run of an evaluation definition came to: its id and folder, its judgments, and the webhook attempts made now.</summary>
internal sealed record EvalRunResult(string RunId, EvalFolder Folder, bool Resumed, IReadOnlyList<AnswerSummary> Answers,
    IReadOnlyList<(JudgeMode Mode, JudgeSummary Summary)> Judgments, IReadOnlyList<WebhookAttempt> WebhookAttempts);

/// <summary>
/// One run of an <see cref="EvalDefinition"/>: every model answers (<see cref="EvalAnswering"/>), the judge judges in each
/// mode (<see cref="EvalJudging"/>), the results are written (<see cref="EvalReport.Write"/>), all in the evaluation
/// folder <c>OUT/RUN_ID/</c>, and then the run's event (<c>eval.run.completed</c>, or <c>eval.run.failed</c> with the
/// reason) goes to the definition's webhook through the webhook outbox and deliverer of <c>OUT/.state/</c>, signed with
/// its secret, as a pipeline run's does. The run id and the packages it found (<c>newest_package_in</c>) are kept in
/// <c>OUT/current.json</c> until it has finished, so a run that failed or was stopped is resumed, jobs and all, by the
/// next one, never skipped.
/// </summary>
internal sealed class EvalRun(EvalDefinition definition, TimeProvider time)
{
    public const string Completed = "eval.run.completed";
    public const string Failed = "eval.run.failed";

    /// <summary>Retry delays of the run's webhook within the run; what is still undelivered stays in the outbox for the next run.</summary>
    public IReadOnlyList<TimeSpan> WebhookRetryDelays { get; init; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)];

    private string CurrentPath => Path.Combine(definition.Out, "current.json");

    public async Task<EvalRunResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var questions = EvalQuestion.ReadAll(definition.Questions);
        Directory.CreateDirectory(definition.Out);
        var state = new LocalDataFolder(Path.Combine(definition.Out, ".state"));
        using var folderLock = LocalJobRun.TakeStateFolder(state, $"evaluation {definition.Name}");
        // the state folder holds only the run's webhook outbox; its one "model" is a name the core needs, no queue is used
        await using var services = OneMachine.Build(state.Path, new InputOptions(), [definition.Name], time, new WebhookDelivererOptions
        {
            SigningSecret = definition.Webhook?.Secret ?? state.SigningSecret(), RetryDelays = WebhookRetryDelays, Timeout = TimeSpan.FromSeconds(10),
        });
        var (runId, packages, resumed) = StartOrResume();
        var folder = new EvalFolder(Path.Combine(definition.Out, runId));
        var answers = new List<AnswerSummary>();
        var judgments = new List<(JudgeMode, JudgeSummary)>();
        var outbox = services.GetRequiredService<WebhookOutbox>();
        try
        {
            folder.KeepQuestions(definition.Questions);
            var answering = new EvalAnswering(folder, questions, time);
            foreach (var model in definition.Models)
            {
                var runner = packages.TryGetValue(model.Name, out var package)
                    ? (IEvalBatchRunner)new LocalBatchRunner(new ModelChoice(model.Name, package), new EngineOptions(), workers: 4)
                    : new ApiBatchRunner(new BatchApiClient(new Uri(model.Url!), KeyOf(model.ApiKeyFile, $"models.{model.Name}")));
                answers.Add(await answering.AnswerAsync(model.Name, runner, new AnswerSettings(model.MaxTokens, model.Temperature), cancellationToken));
            }
            using var judge = new BatchApiClient(new Uri(definition.Judge.Url), KeyOf(definition.Judge.ApiKeyFile, "judge"));
            var judging = new EvalJudging(folder, questions, time);
            foreach (var mode in definition.Judge.Modes)
            {
                var settings = new JudgeSettings(definition.Judge.Model, mode, definition.Judge.Baseline, definition.Judge.MaxTokens);
                judgments.Add((mode, await judging.JudgeAsync([.. definition.Models.Select(m => m.Name)], settings, new ApiBatchRunner(judge), cancellationToken)));
            }
            EvalReport.Write(folder, questions, definition.Judge.Baseline);
            if (definition.Webhook is not null) await outbox.EnqueueAsync(Event(runId, Completed, folder, judgments, null), cancellationToken);
            File.Delete(CurrentPath);
        }
        catch (Exception e) when (e is not OperationCanceledException && definition.Webhook is not null)
        {
            await outbox.EnqueueAsync(Event(runId, Failed, folder, judgments, e.Message), CancellationToken.None);
            await DeliverAsync(services, CancellationToken.None);
            throw;
        }
        var attempts = definition.Webhook is null ? [] : await DeliverAsync(services, cancellationToken);
        return new EvalRunResult(runId, folder, resumed, answers, judgments, attempts);
    }

    /// <summary>The unfinished run in <c>current.json</c>, or a new one: its id, and the packages its models run (the newest found now).</summary>
    private (string RunId, IReadOnlyDictionary<string, string> Packages, bool Resumed) StartOrResume()
    {
        if (File.Exists(CurrentPath) && JsonNode.Parse(File.ReadAllText(CurrentPath)) is JsonObject current
            && current["run_id"]?.GetValue<string>() is { } id && current["packages"] is JsonObject saved)
        {
            return (id, saved.ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()), true);
        }
        var runId = $"ev-{definition.Name}-{time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";
        var packages = definition.Models.Where(m => m.Url is null).ToDictionary(m => m.Name, m => m.Package ?? NewestPackage(m.NewestPackageIn!, m.Name));
        var record = new JsonObject { ["run_id"] = runId, ["packages"] = new JsonObject(packages.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))) };
        EvalFolder.WriteAtomically(CurrentPath, Encoding.UTF8.GetBytes(record.ToJsonString(JsonOutput.Options) + "\n"));
        return (runId, packages, false);
    }

    /// <summary>The package folder (one holding <c>genai_config.json</c>) in <paramref name="folder"/> written last.</summary>
    internal static string NewestPackage(string folder, string model)
    {
        if (!Directory.Exists(folder)) throw new UsageException($"models.{model}.newest_package_in: {folder} is not a folder");
        return new DirectoryInfo(folder).EnumerateDirectories().Where(d => File.Exists(Path.Combine(d.FullName, "genai_config.json")))
                .OrderByDescending(d => d.LastWriteTimeUtc).ThenByDescending(d => d.Name, StringComparer.Ordinal).FirstOrDefault()?.FullName
            ?? throw new UsageException($"models.{model}.newest_package_in: {folder} holds no package folder (one with genai_config.json)");
    }

    private static string KeyOf(string? keyFile, string field)
    {
        if (keyFile is not null)
        {
            var keys = ApiKeyFile.Read(keyFile);
            return keys.Count == 1 ? keys[0] : throw new UsageException($"{field}.api_key_file {keyFile} holds {keys.Count} keys; give a file with one");
        }
        return Environment.GetEnvironmentVariable(ClientCommands.KeyVariable) is { Length: > 0 } key ? key
            : throw new UsageException($"{field}: no API key: give api_key_file in the definition or set {ClientCommands.KeyVariable}");
    }

    private WebhookDelivery Event(string runId, string type, EvalFolder folder, IReadOnlyList<(JudgeMode Mode, JudgeSummary Summary)> judgments, string? error)
    {
        var id = "evt_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{runId}/{type}")))[..32];
        var payload = new JsonObject
        {
            ["id"] = id,
            ["object"] = "event",
            ["type"] = type,
            ["created_at"] = time.GetUtcNow().ToUnixTimeSeconds(),
            ["data"] = new JsonObject
            {
                ["eval"] = definition.Name,
                ["run_id"] = runId,
                ["folder"] = folder.Path,
                ["results"] = error is null ? folder.ResultsMarkdownPath : null,
                ["chart"] = error is null ? folder.ResultsChartPath : null,
                ["judgments"] = new JsonArray([.. judgments.Select(j => (JsonNode)new JsonObject
                {
                    ["mode"] = j.Mode.Name(),
                    ["file"] = j.Summary.JudgmentPath,
                    ["num_judgments"] = j.Summary.NumGames,
                    ["num_unparsable"] = j.Summary.NumUnparsed,
                    ["num_failed"] = j.Summary.NumFailed,
                })]),
                ["error"] = error,
            },
        };
        return new WebhookDelivery(id, type, runId, definition.Webhook!.Url, payload.ToJsonString(JsonOutput.Options));
    }

    private Task<IReadOnlyList<WebhookAttempt>> DeliverAsync(IServiceProvider services, CancellationToken cancellationToken) =>
        services.GetRequiredService<WebhookDeliverer>().DeliverPendingAsync(
            WebhookRetryDelays.Aggregate(TimeSpan.FromSeconds(1), (a, b) => a + b + TimeSpan.FromSeconds(10)), cancellationToken);
}
