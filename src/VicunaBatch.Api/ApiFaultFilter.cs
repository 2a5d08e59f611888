using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace VicunaBatch.Api;

/// <summary>
/// The last word on a request whose handler threw, around every <c>/v1</c> endpoint of serve (an endpoint filter) and every
/// call of <see cref="BatchApi"/> (the Function App). A client's fault found while reading the body — a
/// <see cref="RequestBodyException"/>, or the server's own <see cref="BadHttpRequestException"/> (a body over its limit,
/// a broken chunked encoding), also wrapped by a store that was writing it — is its 4xx in OpenAI's shape. Anything else
/// is a bug or a store that failed: logged with its exception and answered as OpenAI answers a 500, without a trace.
/// A client that went away gets nothing.
/// </summary>
internal sealed class ApiFaultFilter(ILogger<ApiFaultFilter> logger) : IEndpointFilter
{
    public const string InternalErrorMessage = "The server had an error while processing your request; it is logged. Retry, or report it if it persists.";

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        await RunAsync(context.HttpContext, async () => await next(context));

    public async Task<object?> RunAsync(HttpContext context, Func<Task<object?>> handler)
    {
        try
        {
            return await handler();
        }
        catch (Exception) when (context.RequestAborted.IsCancellationRequested)
        {
            logger.LogDebug("{Method} {Path}: the client went away", context.Request.Method, context.Request.Path);
            return Results.Empty;
        }
        catch (Exception e) when (ClientFault(e) is { } refusal)
        {
            return refusal;
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Method} {Path} failed; answered 500", context.Request.Method, context.Request.Path);
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
