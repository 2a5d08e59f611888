using Microsoft.AspNetCore.Http;

namespace VicunaBatch.Api;

/// <summary>
/// The headers OpenAI's SDKs read on every response: <c>x-request-id</c> (an error's <c>requestID</c> in the SDK, and
/// the id the server logs a failure under) and <c>x-should-retry</c>. The SDKs retry 408, 409, 429 and every 5xx
/// unless <c>x-should-retry: false</c> says otherwise; every 4xx here but 408 and 429 is an answer a retry gets again
/// (a batch that cannot be cancelled, a bad body, an unknown id or key), so it says false. A 5xx (a store that failed)
/// may pass, and is left to the SDK's retries.
/// </summary>
internal static class ApiResponseHeaders
{
    public const string RequestIdHeader = "x-request-id";
    public const string ShouldRetryHeader = "x-should-retry";

    /// <summary>Gives the request its id (<c>req_</c> + 32 hex digits) as <c>x-request-id</c> and returns it.</summary>
    public static string StampRequestId(HttpContext context)
    {
        var id = "req_" + Guid.NewGuid().ToString("N");
        context.Response.Headers[RequestIdHeader] = id;
        return id;
    }

    /// <summary>Says <c>x-should-retry: false</c> when <paramref name="result"/>'s status is one a retry cannot change.</summary>
    public static void MarkRetry(HttpContext context, object? result)
    {
        if (context.Response.HasStarted || result is not IStatusCodeHttpResult { StatusCode: { } status }) return;
        if (IsFinal(status)) context.Response.Headers[ShouldRetryHeader] = "false";
    }

    /// <summary>Whether <paramref name="status"/> is a refusal the same request gets again: a 4xx but 408 and 429.</summary>
    public static bool IsFinal(int status) =>
        status is >= 400 and < 500 and not StatusCodes.Status408RequestTimeout and not StatusCodes.Status429TooManyRequests;
}
