using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VicunaBatch.Cli.Eval;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>serve --pipelines DIR</c>: every <see cref="Interval"/>, reads the definitions in DIR (<c>*.json</c>; a bad one is
/// logged and skipped), keeps each in the data folder's <see cref="PipelineDefinitionStore"/> (where the deliverer finds
/// its webhook secret) and ticks them (<see cref="PipelineTicker"/>). Stages are jobs on serve's own queue; this loop
/// waits for them on the job store while serve's worker and finalizer run them. State in the data folder's blob store.
/// Definitions of <c>"kind": "eval"</c> are scheduled evaluations, ticked after the pipelines by the same rule
/// (<see cref="EvalSchedule"/>); a run's answers and judgments go through the APIs and packages it names, its state and
/// webhook outbox in its own output folder.
/// </summary>
internal sealed class PipelineLoop(
    ServeSettings settings, PipelineRuns runs, PipelineDefinitionStore definitionStore, ServeEngines engines, TimeProvider time, ILogger<PipelineLoop> logger)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // pipelines' lines name no model: their jobs run on the default one, whose tokenizer splits their documents
        var model = engines.Default.Model;
        var prompts = RequestPrompts.Of(model) ?? throw new UsageException($"model '{engines.Default.Name}' {model.Package.NoTokenizer}: pipelines need one");
        var ticker = runs.Ticker(location => new FolderBlobStore(new FolderBlobStoreOptions { RootPath = location.Folder! }),
            new TokenizerDocuments(prompts.Tokenizer), prompts.ContextLength,
            runs.WaitingDriver(new PollingJobDriverOptions { MaxWait = TimeSpan.FromMinutes(10), PollInterval = TimeSpan.FromMilliseconds(250) }));
        try
        {
            while (true)
            {
                var (definitions, evals) = await LoadDefinitionsAsync(stoppingToken);
                foreach (var result in await ticker.TickAsync(definitions, stoppingToken))
                {
                    if (result.Outcome == PipelineTickOutcome.Failed) logger.LogError("pipeline {Pipeline} run failed: {Error}", result.Pipeline, result.Error);
                    else if (result.Run is { } run)
                        logger.LogInformation("pipeline {Pipeline} run {RunId}: {Status}{Counts}", result.Pipeline, run.RunId, run.Status.SnakeCase(),
                            run.Manifest is { } m ? $" ({m.NumSummarized} summarized, {m.NumErrors} errors)" : "");
                }
                foreach (var eval in evals) await TickAsync(eval, stoppingToken);
                await Task.Delay(Interval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task TickAsync(EvalDefinition eval, CancellationToken cancellationToken)
    {
        try
        {
            if (await new EvalSchedule(time).TickAsync(eval, cancellationToken) is { } run)
                logger.LogInformation("evaluation {Eval} run {RunId}: completed ({Folder})", eval.Name, run.RunId, run.Folder.Path);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError("evaluation {Eval} run failed: {Error}", eval.Name, e.Message);
        }
    }

    private async Task<(List<PipelineDefinition> Pipelines, List<EvalDefinition> Evals)> LoadDefinitionsAsync(CancellationToken cancellationToken)
    {
        var definitions = new List<PipelineDefinition>();
        var evals = new List<EvalDefinition>();
        foreach (var path in Directory.EnumerateFiles(settings.PipelinesPath!, "*.json").Order(StringComparer.Ordinal))
        {
            try
            {
                if (EvalDefinition.IsEval(await File.ReadAllTextAsync(path, cancellationToken)))
                {
                    evals.Add(EvalDefinition.Load(path));
                    continue;
                }
                var definition = LocalPipelineRun.Load(path);
                if (definition.Source.Location.Folder is null || definition.Output.Folder is null) continue;
                await definitionStore.SaveAsync(await File.ReadAllTextAsync(path, cancellationToken), cancellationToken);
                definitions.Add(definition);
            }
            catch (Exception e) when (e is PipelineDefinitionException or UsageException or IOException)
            {
                logger.LogError("pipeline definition {Path} skipped: {Reason}", path, e.Message);
            }
        }
        return (definitions, evals);
    }
}
