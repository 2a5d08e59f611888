using Azure.Storage.Blobs;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using VicunaBatch.Azure;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Execution;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Functions;

/// <summary>
/// Every minute, <see cref="PipelineTicker.TickAsync"/> over the definitions in the pipelines container
/// (<see cref="PipelineDefinitionStore"/>): each pipeline whose schedule fired, or whose run is unfinished, runs; a stage
/// not finished within <c>Pipelines__StageWait</c> leaves the run to the next tick. Without <c>Pipelines__ModelPath</c>
/// or <c>Pipelines__ModelSourceUri</c> it does nothing.
/// </summary>
public sealed class PipelinesFunction(PipelineTicks ticks, ILogger<PipelinesFunction> logger)
{
    public const string Schedule = "0 * * * * *";

    [Function("Pipelines")]
    public async Task<IReadOnlyList<PipelineTickResult>> RunAsync([TimerTrigger(Schedule)] TimerInfo timer, CancellationToken cancellationToken)
    {
        var (results, problems) = await ticks.TickAsync(cancellationToken);
        foreach (var problem in problems) logger.LogError("pipeline definition {Blob} skipped: {Reason}", problem.BlobName, problem.Reason);
        foreach (var result in results)
        {
            if (result.Outcome == PipelineTickOutcome.Failed) logger.LogError("pipeline {Pipeline} run failed: {Error}", result.Pipeline, result.Error);
            else if (result.Run is { } run) logger.LogInformation("pipeline {Pipeline} run {RunId}: {Status}", result.Pipeline, run.RunId, run.Status.SnakeCase());
        }
        return results;
    }
}

/// <summary>The Pipelines timer's work on the Azure parts: sources and outputs are containers of the storage account.</summary>
public sealed class PipelineTicks(PipelineRuns runs, PipelineDefinitionStore definitions, BlobServiceClient service, FunctionsOptions options)
{
    private readonly SemaphoreSlim _loading = new(1, 1);
    private (IDocumentTokenizer Tokenizer, int ContextLength)? _model;
    private bool _loaded;

    public async Task<(IReadOnlyList<PipelineTickResult> Results, IReadOnlyList<PipelineDefinitionProblem> Problems)> TickAsync(CancellationToken cancellationToken = default)
    {
        if (await ModelAsync(cancellationToken) is not { } model) return ([], []);
        var (tokenizer, contextLength) = model;
        var (found, problems) = await definitions.ListAsync(cancellationToken);
        var usable = new List<PipelineDefinition>();
        var allProblems = problems.ToList();
        foreach (var definition in found)
        {
            if (definition.Source.Location.Container is null || definition.Output.Container is null)
                allProblems.Add(new(PipelineDefinitionStore.BlobName(definition.Name), "source and output must be containers on Azure (not folders)"));
            else usable.Add(definition);
        }
        var ticker = runs.Ticker(location => AzureBlobStore.ForContainer(service, location.Container!), tokenizer, contextLength,
            runs.WaitingDriver(new PollingJobDriverOptions { MaxWait = options.Pipelines.StageWait }));
        return (await ticker.TickAsync(usable, cancellationToken), allProblems);
    }

    /// <summary>The tokenizer and context of the workers' model, loaded once (a failed copy is tried again next tick).</summary>
    private async Task<(IDocumentTokenizer Tokenizer, int ContextLength)?> ModelAsync(CancellationToken cancellationToken)
    {
        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (_loaded) return _model;
            RequestPrompts? prompts = null;
            if (options.Pipelines.ModelPath is { Length: > 0 } path) prompts = RequestPrompts.OfPackage(path);
            else if (options.Pipelines.ModelSourceUri is { } uri)
            {
                // the config and the tokenizer only, read into memory: no weights, no local copy
                var source = BlobModelSource.From(service, uri);
                var (files, _) = await new BlobPackageReader(source.Store, source.Prefix, uri.ToString())
                    .ReadAsync(new HashSet<string> { ModelPackage.ConfigFileName, ModelPackage.TokenizerFileName }, cancellationToken);
                using (files) prompts = RequestPrompts.OfPackage(files);
            }
            if (prompts is not null) _model = (new TokenizerDocuments(prompts.Tokenizer), prompts.ContextLength);
            _loaded = true;
            return _model;
        }
        finally
        {
            _loading.Release();
        }
    }
}
