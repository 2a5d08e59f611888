using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Api;

/// <summary>OpenAI's model object: <c>created</c> is when this deployment began serving it (it has no other date).</summary>
internal sealed record ModelObject(string Id, long Created)
{
    public string Object => "model";
    public string OwnedBy => "vicuna-batch";
}

/// <summary>The model list's page, as OpenAI's <c>GET /v1/models</c> answers it (one page: a deployment serves a few).</summary>
internal sealed record ModelList(IReadOnlyList<ModelObject> Data)
{
    public string Object => "list";
}

/// <summary><c>/v1/models</c>: the models this deployment serves (<see cref="ServedModels"/>), the same for every tenant.</summary>
internal sealed class ModelHandlers(ServedModels models, TimeProvider time)
{
    private readonly long _servingSince = time.GetUtcNow().ToUnixTimeSeconds();

    public IResult List() => Results.Json(new ModelList([.. models.Names.Select(n => new ModelObject(n, _servingSince))]), ApiJson.Options);

    public IResult Get(string modelId) => models.Serves(modelId)
        ? Results.Json(new ModelObject(modelId, _servingSince), ApiJson.Options)
        : NotFound(modelId);

    /// <summary>A served model is not the caller's to delete (OpenAI answers so for a model one does not own); another is not found.</summary>
    public IResult Delete(string modelId) => models.Serves(modelId)
        ? ApiErrors.Error(StatusCodes.Status403Forbidden, $"You have insufficient permissions to delete the model '{modelId}': it is served by this deployment.",
            "permission_denied", "model")
        : NotFound(modelId);

    private static IResult NotFound(string modelId) =>
        ApiErrors.Error(StatusCodes.Status404NotFound, $"The model '{modelId}' does not exist or is not served here.", "model_not_found", "model");
}
