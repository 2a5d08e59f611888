using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using VicunaBatch.Api;

namespace VicunaBatch.Functions;

/// <summary>
/// The OpenAI-compatible routes as HTTP triggers over the Api's own handlers (<see cref="BatchApi"/>; host.json's
/// <c>routePrefix: ""</c> keeps the paths <c>/v1/…</c>). <see cref="AuthorizationLevel.Anonymous"/> on purpose: the
/// OpenAI SDK sends <c>Authorization: Bearer &lt;key&gt;</c>, not a function key, so the Api checks that bearer key
/// itself against <c>Api__Keys</c> (Key Vault references) and answers 401 in OpenAI's error shape.
/// </summary>
public sealed class ApiFunctions(BatchApi api)
{
    [Function("FilesUpload")]
    public Task<IResult> UploadFileAsync([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/files")] HttpRequest request) =>
        api.UploadFileAsync(request.HttpContext);

    [Function("FilesList")]
    public Task<IResult> ListFilesAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/files")] HttpRequest request) =>
        api.ListFilesAsync(request.HttpContext);

    [Function("FilesDelete")]
    public Task<IResult> DeleteFileAsync([HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/files/{fileId}")] HttpRequest request, string fileId) =>
        api.DeleteFileAsync(request.HttpContext, fileId);

    [Function("FilesGet")]
    public Task<IResult> GetFileAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/files/{fileId}")] HttpRequest request, string fileId) =>
        api.GetFileAsync(request.HttpContext, fileId);

    [Function("FilesContent")]
    public Task<IResult> GetFileContentAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/files/{fileId}/content")] HttpRequest request, string fileId) =>
        api.GetFileContentAsync(request.HttpContext, fileId);

    [Function("BatchesCreate")]
    public Task<IResult> CreateBatchAsync([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/batches")] HttpRequest request) =>
        api.CreateBatchAsync(request.HttpContext);

    [Function("BatchesList")]
    public Task<IResult> ListBatchesAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/batches")] HttpRequest request) =>
        api.ListBatchesAsync(request.HttpContext);

    [Function("BatchesValidate")]
    public Task<IResult> ValidateAsync([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/batches/validate")] HttpRequest request) =>
        api.ValidateAsync(request.HttpContext);

    [Function("BatchesGet")]
    public Task<IResult> GetBatchAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/batches/{batchId}")] HttpRequest request, string batchId) =>
        api.GetBatchAsync(request.HttpContext, batchId);

    [Function("ModelsList")]
    public Task<IResult> ListModelsAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/models")] HttpRequest request) =>
        api.ListModelsAsync(request.HttpContext);

    [Function("ModelsGet")]
    public Task<IResult> GetModelAsync([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/models/{modelId}")] HttpRequest request, string modelId) =>
        api.GetModelAsync(request.HttpContext, modelId);

    [Function("ModelsDelete")]
    public Task<IResult> DeleteModelAsync([HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/models/{modelId}")] HttpRequest request, string modelId) =>
        api.DeleteModelAsync(request.HttpContext, modelId);

    [Function("BatchesCancel")]
    public Task<IResult> CancelBatchAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/batches/{batchId}/cancel")] HttpRequest request, string batchId) =>
        api.CancelBatchAsync(request.HttpContext, batchId);
}
