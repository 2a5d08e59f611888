using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Pipelines;

/// <summary>
/// What a host needs to run pipelines, assembled once: their runs keep their state in the deployment's blob store,
/// their stages are jobs on its queue (<see cref="JobSubmitter"/>) and their run-end events go to its outbox. A host
/// says only what is its own: how a definition's source and output become blob stores (folders on one machine,
/// containers on Azure), the model's tokenizer and context, and how a stage's job is waited for.
/// </summary>
public sealed class PipelineRuns(IBlobStore state, IJobStore jobs, JobSubmitter submitter, WebhookOutbox outbox, TimeProvider time)
{
    /// <summary>The ticker of a host that runs definitions on their schedules (serve, the Functions timer).</summary>
    public PipelineTicker Ticker(Func<PipelineLocation, IBlobStore> storeOf, IDocumentTokenizer tokenizer, int contextLength, IJobDriver driver)
    {
        var stages = new PipelineStages(state, submitter, driver);
        return new PipelineTicker(state, d => new PipelineRunner(d,
            new PipelineParts(storeOf(d.Source.Location), storeOf(d.Output), state, stages, tokenizer, contextLength, outbox), time), time);
    }

    /// <summary>One run of one definition now (<c>pipeline run</c>), from and to the stores given.</summary>
    public PipelineRunner Runner(PipelineDefinition definition, IBlobStore source, IBlobStore output, IDocumentTokenizer tokenizer, int contextLength, IJobDriver driver) =>
        new(definition, new PipelineParts(source, output, state, new PipelineStages(state, submitter, driver), tokenizer, contextLength, outbox), time);

    /// <summary>A driver for hosts where workers and the finalizer run the stages' jobs: it waits on the job store.</summary>
    public IJobDriver WaitingDriver(PollingJobDriverOptions options) => new PollingJobDriver(jobs, time, options);

    /// <summary>Breaks the run lock of <paramref name="pipelineName"/> (a host that owns the state alone, after a killed run).</summary>
    public Task BreakLockAsync(string pipelineName, CancellationToken cancellationToken = default) =>
        new PipelineState(state, pipelineName, time).BreakLockAsync(cancellationToken);
}
