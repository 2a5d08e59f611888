using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Pipelines;

/// <summary>A definition blob that could not be used, and why.</summary>
public sealed record PipelineDefinitionProblem(string BlobName, string Reason);

/// <summary>
/// Pipeline definitions kept in the blob store at <c>pipelines/_definitions/{name}.json</c> (the file name is the
/// pipeline's name; a leading '_' cannot start a pipeline name, so this never meets a pipeline's state folder).
/// </summary>
public sealed class PipelineDefinitionStore(IBlobStore blobs)
{
    public const string Prefix = "pipelines/_definitions/";

    public static string BlobName(string pipelineName) => $"{Prefix}{pipelineName}.json";

    /// <summary>Every definition; bad ones (invalid JSON or fields, a name that is not the file's) are returned as problems.</summary>
    public async Task<(IReadOnlyList<PipelineDefinition> Definitions, IReadOnlyList<PipelineDefinitionProblem> Problems)> ListAsync(
        CancellationToken cancellationToken = default)
    {
        var definitions = new List<PipelineDefinition>();
        var problems = new List<PipelineDefinitionProblem>();
        await foreach (var name in blobs.ListAsync(Prefix, cancellationToken))
        {
            if (!name.EndsWith(".json", StringComparison.Ordinal) || name.IndexOf('/', Prefix.Length) >= 0) continue;
            try
            {
                var definition = PipelineDefinition.Parse(System.Text.Encoding.UTF8.GetString(await blobs.ReadBytesAsync(name, cancellationToken)));
                if (BlobName(definition.Name) != name) problems.Add(new(name, $"name \"{definition.Name}\" must match the blob name ({BlobName(definition.Name)})"));
                else definitions.Add(definition);
            }
            catch (PipelineDefinitionException e) { problems.Add(new(name, e.Message)); }
            catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.NotFound) { } // deleted meanwhile
        }
        return (definitions, problems);
    }

    /// <summary>
    /// Keeps a definition given as its JSON text (a host that reads definitions from a folder), so the webhook secret of
    /// its runs' events is found here as on Azure. Written only when it changed; returns the parsed definition.
    /// </summary>
    public async Task<PipelineDefinition> SaveAsync(string json, CancellationToken cancellationToken = default)
    {
        var definition = PipelineDefinition.Parse(json);
        var name = BlobName(definition.Name);
        var content = System.Text.Encoding.UTF8.GetBytes(json);
        if (await blobs.ExistsAsync(name, cancellationToken) && (await blobs.ReadBytesAsync(name, cancellationToken)).AsSpan().SequenceEqual(content))
            return definition;
        await blobs.PutBytesAsync(name, content, BlobCondition.None, cancellationToken);
        return definition;
    }

    /// <summary>The webhook secret of the pipeline that owns <paramref name="runId"/>'s events; null when it is not a pipeline run or has none.</summary>
    public async Task<string?> WebhookSecretOfRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        if (PipelineRunner.PipelineNameOf(runId) is not { } name || !await blobs.ExistsAsync(BlobName(name), cancellationToken)) return null;
        try { return PipelineDefinition.Parse(System.Text.Encoding.UTF8.GetString(await blobs.ReadBytesAsync(BlobName(name), cancellationToken))).Webhook?.Secret; }
        catch (PipelineDefinitionException) { return null; }
    }
}
