using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;

namespace VicunaBatch.Api;

/// <summary>
/// The API's operations as plain calls over an <see cref="HttpContext"/>, each behind the same bearer-key check
/// as the mapped endpoints: the entry point for a host that routes requests itself (the Azure Functions HTTP
/// triggers), so both hosts run the same handlers, and what they throw is answered as serve answers it
/// (<see cref="ApiFaultFilter"/>). Registered by <see cref="ApiExtensions.AddVicunaBatchApi"/>.
/// </summary>
public sealed class BatchApi
{
    private readonly ApiKeyFilter _keys;
    private readonly ApiFaultFilter _faults;
    private readonly FileCatalog _files;
    private readonly TenantBatches _batches;
    private readonly InputDryRun _dryRun;
    private readonly BatchObjects _objects;
    private readonly ModelHandlers _models;
    private readonly ApiOptions _options;

    internal BatchApi(ApiKeyFilter keys, ApiFaultFilter faults, FileCatalog files, TenantBatches batches, InputDryRun dryRun, BatchObjects objects,
        ModelHandlers models, ApiOptions options) =>
        (_keys, _faults, _files, _batches, _dryRun, _objects, _models, _options) = (keys, faults, files, batches, dryRun, objects, models, options);

    /// <summary><c>POST /v1/files</c></summary>
    public Task<IResult> UploadFileAsync(HttpContext context) =>
        RunAuthenticatedAsync(context, ct => FileHandlers.UploadAsync(context, _files, _options, ct));

    /// <summary><c>GET /v1/files</c></summary>
    public Task<IResult> ListFilesAsync(HttpContext context) =>
        RunAuthenticatedAsync(context, ct => FileHandlers.ListAsync(context, _files, ct));

    /// <summary><c>DELETE /v1/files/{fileId}</c></summary>
    public Task<IResult> DeleteFileAsync(HttpContext context, string fileId) =>
        RunAuthenticatedAsync(context, ct => FileHandlers.DeleteAsync(context, fileId, _files, ct));

    /// <summary><c>GET /v1/files/{fileId}</c></summary>
    public Task<IResult> GetFileAsync(HttpContext context, string fileId) =>
        RunAuthenticatedAsync(context, ct => FileHandlers.GetAsync(context, fileId, _files, ct));

    /// <summary><c>GET /v1/files/{fileId}/content</c></summary>
    public Task<IResult> GetFileContentAsync(HttpContext context, string fileId) =>
        RunAuthenticatedAsync(context, ct => FileHandlers.GetContentAsync(context, fileId, _files, ct));

    /// <summary><c>POST /v1/batches</c></summary>
    public Task<IResult> CreateBatchAsync(HttpContext context) =>
        RunAuthenticatedAsync(context, ct => BatchHandlers.CreateAsync(context, _batches, _files, _dryRun, _objects, _options, ct));

    /// <summary><c>GET /v1/batches</c></summary>
    public Task<IResult> ListBatchesAsync(HttpContext context) =>
        RunAuthenticatedAsync(context, ct => BatchHandlers.ListAsync(context, _batches, _objects, _options, ct));

    /// <summary><c>GET /v1/batches/{batchId}</c></summary>
    public Task<IResult> GetBatchAsync(HttpContext context, string batchId) =>
        RunAuthenticatedAsync(context, ct => BatchHandlers.GetAsync(context, batchId, _batches, _objects, ct));

    /// <summary><c>POST /v1/batches/{batchId}/cancel</c></summary>
    public Task<IResult> CancelBatchAsync(HttpContext context, string batchId) =>
        RunAuthenticatedAsync(context, ct => BatchHandlers.CancelAsync(context, batchId, _batches, _objects, ct));

    /// <summary><c>GET /v1/models</c></summary>
    public Task<IResult> ListModelsAsync(HttpContext context) => RunAuthenticatedAsync(context, _ => Task.FromResult(_models.List()));

    /// <summary><c>GET /v1/models/{modelId}</c></summary>
    public Task<IResult> GetModelAsync(HttpContext context, string modelId) => RunAuthenticatedAsync(context, _ => Task.FromResult(_models.Get(modelId)));

    /// <summary><c>DELETE /v1/models/{modelId}</c></summary>
    public Task<IResult> DeleteModelAsync(HttpContext context, string modelId) => RunAuthenticatedAsync(context, _ => Task.FromResult(_models.Delete(modelId)));

    /// <summary><c>POST /v1/batches/validate</c></summary>
    public Task<IResult> ValidateAsync(HttpContext context) =>
        RunAuthenticatedAsync(context, ct => ValidateHandler.ValidateAsync(context, _files, _dryRun, _options, ct));

    private async Task<IResult> RunAuthenticatedAsync(HttpContext context, Func<CancellationToken, Task<IResult>> handler) =>
        (IResult)(await _faults.RunAsync(context, async () => await _keys.AuthenticateAsync(context) ?? await handler(context.RequestAborted)))!;
}
