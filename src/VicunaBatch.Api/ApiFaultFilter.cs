using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace VicunaBatch.Api;

/// <summary>
/// The last word on a request whose handler threw, around every <c>/v1</c> endpoint of serve (an endpoint filter) and every
/// call of <see cref="BatchApi"/> (the Function App). A client's fault found while reading the body — a
/// <see cref="RequestBodyException"/>, or the server's own <see cref="BadHttpRequestException"/> (a body over its limit,
/// a broken chunked encoding), also wrapped by a store that was writing it — is its 4xx in OpenAI's shape. Anything else
/// is a bug or a store that failed: logged with its exception and answered as OpenAI answers a 500, without a trace.
/// A client that went away gets nothing. Every answer carries its request id and, when a retry cannot change it,
/// <c>x-should-retry: false</c> (<see cref="ApiResponseHeaders"/>); the log line of a refusal or a 500 names the id.
/// </summary>
internal sealed class ApiFaultFilter(ILogger<ApiFaultFilter> logger) : IEndpointFilter
{
    public const string InternalErrorMessage = "The server had an error while processing your request; it is logged. Retry, or report it if it persists.";

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        await RunAsync(context.HttpContext, async () => await next(context));

    /// <summary>Runs <paramref name="handler"/> with the request's <c>x-request-id</c> set first, and answers with its
    /// <c>x-should-retry</c> (<see cref="ApiResponseHeaders"/>).</summary>
    public async Task<object?> RunAsync(HttpContext context, Func<Task<object?>> handler)
    {
        var requestId = ApiResponseHeaders.StampRequestId(context);
        var result = await AnswerAsync(context, requestId, handler);
        ApiResponseHeaders.MarkRetry(context, result);
        if (result is IStatusCodeHttpResult { StatusCode: >= 400 and < 500 and var status })
            logger.LogInformation("{Method} {Path} ({RequestId}): refused with {Status}", context.Request.Method, context.Request.Path, requestId, status);
        return result;
    }

    private async Task<object?> AnswerAsync(HttpContext context, string requestId, Func<Task<object?>> handler)
    {
        try
        {
            return await handler();
        }
        catch (Exception) when (context.RequestAborted.IsCancellationRequested)
        {
            logger.LogDebug("{Method} {Path} ({RequestId}): the client went away", context.Request.Method, context.Request.Path, requestId);
            return Results.Empty;
        }
        catch (Exception e) when (ClientFault(e) is { } refusal)
        {
            return refusal;
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Method} {Path} ({RequestId}) failed; answered 500", context.Request.Method, context.Request.Path, requestId);
            return ApiErrors.Error(StatusCodes.Status500InternalServerError, InternalErrorMessage, "internal_error");
        }
    }

    /// <summary>The 4xx of a client's fault in <paramref name="e"/> or what it wraps, or null.</summary>
    private static IResult? ClientFault(Exception? e) => e switch
    {
        null => null,
        RequestBodyException body => body.ToResult(),
        BadHttpRequestException bad => ApiErrors.Error(bad.StatusCode, $"The request could not be read: {bad.Message}",
            bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request_too_large" : "invalid_request"),
        AggregateException all => all.InnerExceptions.Select(ClientFault).FirstOrDefault(r => r is not null),
        _ => ClientFault(e.InnerException),
    };
}
