using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Api;

/// <summary><c>/v1/batches</c>: create (after a dry run of the input), retrieve, list, cancel.</summary>
internal static class BatchHandlers
{
    /// <summary>
    /// Creates the batch after a dry run of its input. An input that does not validate (a bad line, a line for another
    /// endpoint, no request) is no refusal, as at OpenAI: the batch is created and fails validation at once, its lines'
    /// problems in <c>errors.data</c>, and its <c>batch.failed</c> event goes to the webhook.
    /// </summary>
    public static async Task<IResult> CreateAsync(
        HttpContext context, TenantBatches batches, FileCatalog files, InputDryRun dryRun, BatchObjects objects, JobSettler settler,
        ApiOptions options, CancellationToken cancellationToken)
    {
        var owner = ApiKeyFilter.TenantOf(context);
        if (await ReadJsonAsync(context.Request, cancellationToken) is not { } root) return ApiErrors.BadRequest("The request body must be valid JSON.");
        var (body, error, param) = BatchCreateBody.Parse(root, options);
        if (body is null) return ApiErrors.BadRequest(error!, param);
        if (body.Webhook is { } hook)
        {
            try
            {
                await new WebhookUrlPolicy(options.WebhookUrls).ValidateAsync(hook.Url, cancellationToken);
            }
            catch (WebhookUrlException e) when (e.Reason == WebhookUrlRejection.ResolutionFailed)
            {
                // may resolve later, but nothing is created for a host that does not resolve now
                return ApiErrors.BadRequest($"webhook.url cannot be reached: {e.Message}", "webhook.url", "webhook_host_unresolved");
            }
            catch (WebhookUrlException e)
            {
                return ApiErrors.BadRequest($"webhook.url is not allowed: {e.Message}", "webhook.url", "invalid_webhook_url");
            }
        }
        if (await files.GetAsync(owner, body.InputFileId, cancellationToken) is not { Purpose: FilePurpose.Batch } file)
            return ApiErrors.NotFound("file", body.InputFileId, "input_file_id");

        DryRunReport report;
        await using (var content = await files.OpenReadAsync(file, cancellationToken))
            report = await dryRun.RunAsync(content, file.Format, body.Endpoint, cancellationToken);

        // accepted: created whole even if the client goes away now (a create cut short would leave a batch that never runs)
        BatchJob job;
        BatchRecord record;
        try
        {
            (job, record) = await batches.CreateAsync(new BatchCreation(owner, file, body.Endpoint)
            {
                Metadata = body.Metadata, Webhook = body.Webhook, WebhookSecret = body.WebhookSecret, OutputExpiresAfterSeconds = body.OutputExpiresAfter,
                // no valid line: the batch fails validation, as at OpenAI; otherwise the bad lines become error lines
                InvalidInput = report is { NumRequests: 0, NumInvalid: > 0 } ? report.Errors.Select(JobError.From).ToList() : null,
                InvalidInputModel = report.AskedModel,
            }, CancellationToken.None);
        }
        catch (FileNotFoundException) { return ApiErrors.NotFound("file", body.InputFileId, "input_file_id"); } // deleted meanwhile
        job = await settler.SettleSubmittedAsync(job, CancellationToken.None); // ended at submit: announced as any ending
        var node = await objects.RenderAsync(job, record, cancellationToken);
        if (body.SecretGenerated && node["webhook"] is JsonObject webhook) webhook["secret"] = body.WebhookSecret; // shown once, here only
        return Results.Json(node, ApiJson.Options);
    }

    public static async Task<IResult> GetAsync(HttpContext context, string batchId, TenantBatches batches, BatchObjects objects, CancellationToken cancellationToken) =>
        await batches.GetAsync(ApiKeyFilter.TenantOf(context), batchId, cancellationToken) is { } found
            ? Results.Json(await objects.RenderAsync(found.Stored.Job, found.Record, cancellationToken), ApiJson.Options)
            : ApiErrors.NotFound("batch", batchId, "batch_id");

    public static async Task<IResult> ListAsync(
        HttpContext context, TenantBatches batches, BatchObjects objects, ApiOptions options, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        int limit = options.DefaultListLimit;
        if (query.TryGetValue("limit", out var text) && (!int.TryParse(text, out limit) || limit is < 1 or > 100))
            return ApiErrors.BadRequest($"Invalid limit '{text}': must be an integer in [1, 100].", "limit");
        string? after = query.TryGetValue("after", out var a) && !string.IsNullOrEmpty(a) ? a.ToString() : null;
        var page = await batches.ListAsync(ApiKeyFilter.TenantOf(context), after, limit, cancellationToken);
        var data = new JsonArray();
        foreach (var (job, record) in page.Items) data.Add(await objects.RenderAsync(job, record, cancellationToken));
        var list = new JsonObject
        {
            ["object"] = "list", ["data"] = data,
            ["first_id"] = page.Items.Count > 0 ? page.Items[0].Job.Id : null,
            ["last_id"] = page.Items.Count > 0 ? page.Items[^1].Job.Id : null,
            ["has_more"] = page.HasMore,
        };
        return Results.Json(list, ApiJson.Options);
    }

    public static async Task<IResult> CancelAsync(HttpContext context, string batchId, TenantBatches batches, BatchObjects objects, CancellationToken cancellationToken)
    {
        var owner = ApiKeyFilter.TenantOf(context);
        var (outcome, job) = await batches.CancelAsync(owner, batchId, cancellationToken);
        if (outcome == CancelOutcome.NotFound) return ApiErrors.NotFound("batch", batchId, "batch_id");
        if (outcome == CancelOutcome.NotCancellable)
            return ApiErrors.Error(StatusCodes.Status409Conflict, $"Batch {batchId} is {job!.Status.SnakeCase()} and cannot be cancelled.", "batch_not_cancellable");
        var found = await batches.GetAsync(owner, batchId, cancellationToken);
        return Results.Json(await objects.RenderAsync(found!.Value.Stored.Job, found.Value.Record, cancellationToken), ApiJson.Options);
    }

    /// <summary>The body as JSON, or null when it is not JSON or one of its strings does not decode (invalid UTF-8, a lone
    /// surrogate escape: the parser lets them through, and reading them would throw later).</summary>
    internal static async Task<JsonElement?> ReadJsonAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body, default, cancellationToken);
            return Decodes(document.RootElement) ? document.RootElement.Clone() : null;
        }
        catch (JsonException) { return null; }
    }

    private static bool Decodes(JsonElement element)
    {
        try
        {
            Read(element);
            return true;
        }
        catch (InvalidOperationException) { return false; } // "Cannot transcode invalid UTF-8 JSON text to UTF-16 string"

        static void Read(JsonElement element) // depth: at most the parser's 64
        {
            if (element.ValueKind == JsonValueKind.String) _ = element.GetString();
            else if (element.ValueKind == JsonValueKind.Array) foreach (var item in element.EnumerateArray()) Read(item);
            else if (element.ValueKind == JsonValueKind.Object)
                foreach (var property in element.EnumerateObject())
                {
                    _ = property.Name;
                    Read(property.Value);
                }
        }
    }
}
