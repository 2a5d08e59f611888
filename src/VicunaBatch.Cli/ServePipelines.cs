using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Inference;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary>Pipeline name → its webhook secret, for the deliverer to sign pipeline run events (their job id is the run id).</summary>
internal sealed class PipelineSecrets
{
    private readonly ConcurrentDictionary<string, string> _nameToSecret = new(StringComparer.Ordinal);

    public void Set(PipelineDefinition definition)
    {
        if (definition.Webhook is { } webhook) _nameToSecret[definition.Name] = webhook.Secret;
    }

    /// <summary>The secret of a pipeline run's events, else <paramref name="fallback"/>'s answer.</summary>
    public async Task<string?> LookupAsync(string jobId, Func<string, CancellationToken, Task<string?>> fallback, CancellationToken cancellationToken) =>
        PipelineRunner.PipelineNameOf(jobId) is { } name && _nameToSecret.TryGetValue(name, out var secret) ? secret : await fallback(jobId, cancellationToken);
}

/// <summary>
/// <c>serve --pipelines DIR</c>: every <see cref="Interval"/>, reads the definitions in DIR (<c>*.json</c>; a bad one is
/// logged and skipped) and ticks them (<see cref="PipelineTicker"/>). Stages are jobs on serve's own queue; this loop
/// waits for them on the job store while serve's worker and finalizer run them. State in the data folder's blob store.
/// </summary>
internal sealed class PipelineLoop(
    ServeSettings settings, IBlobStore blobs, IJobStore jobs, JobSubmitter submitter, LoadedModel model, WebhookOutbox outbox,
    PipelineSecrets secrets, TimeProvider time, ILogger<PipelineLoop> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var tokenizer = new SentencePieceDocuments(model.Tokenizer ?? throw new UsageException($"model '{model.Name}' has no tokenizer.model: pipelines need one"));
        var stages = new PipelineStages(blobs, submitter, new PollingJobDriver(jobs, time, new PollingJobDriverOptions { MaxWait = TimeSpan.FromMinutes(10), PollInterval = TimeSpan.FromMilliseconds(250) }));
        var ticker = new PipelineTicker(blobs, d => new PipelineRunner(d, new PipelineParts(
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = d.Source.Location.Folder! }),
            new FolderBlobStore(new FolderBlobStoreOptions { RootPath = d.Output.Folder! }),
            blobs, stages, tokenizer, model.Engine.MaxSequenceLength, outbox), time), time);
        try
        {
            while (true)
            {
                foreach (var result in await ticker.TickAsync(LoadDefinitions(), stoppingToken))
                {
                    if (result.Outcome == PipelineTickOutcome.Failed) logger.LogError("pipeline {Pipeline} run failed: {Error}", result.Pipeline, result.Error);
                    else if (result.Run is { } run)
                        logger.LogInformation("pipeline {Pipeline} run {RunId}: {Status}{Counts}", result.Pipeline, run.RunId, run.Status.SnakeCase(),
                            run.Manifest is { } m ? $" ({m.NumSummarized} summarized, {m.NumErrors} errors)" : "");
                }
                await Task.Delay(Interval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private List<PipelineDefinition> LoadDefinitions()
    {
        var definitions = new List<PipelineDefinition>();
        foreach (var path in Directory.EnumerateFiles(settings.PipelinesPath!, "*.json").Order(StringComparer.Ordinal))
        {
            try
            {
                var definition = LocalPipelineRun.Load(path);
                if (definition.Source.Location.Folder is null || definition.Output.Folder is null) continue;
                secrets.Set(definition);
                definitions.Add(definition);
            }
            catch (Exception e) when (e is PipelineDefinitionException or UsageException or IOException)
            {
                logger.LogError("pipeline definition {Path} skipped: {Reason}", path, e.Message);
            }
        }
        return definitions;
    }
}
