using Microsoft.AspNetCore.Http;

namespace VicunaBatch.Api;

/// <summary>Responses in OpenAI's error shape: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
internal static class ApiErrors
{
    public static IResult Error(int status, string message, string? code = null, string? param = null, object? extra = null)
    {
        var type = status switch
        {
            StatusCodes.Status401Unauthorized => "authentication_error",
            StatusCodes.Status403Forbidden => "permission_error",
            StatusCodes.Status404NotFound => "invalid_request_error",
            StatusCodes.Status409Conflict => "invalid_request_error",
            >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        var error = new ErrorBody(message, type, param, code);
        return extra is null
            ? Results.Json(new ErrorEnvelope(error), ApiJson.Options, statusCode: status)
            : Results.Json(new ErrorWithValidation(error, extra), ApiJson.Options, statusCode: status);
    }

    public static IResult BadRequest(string message, string? param = null, string code = "invalid_request", object? extra = null) =>
        Error(StatusCodes.Status400BadRequest, message, code, param, extra);

    public static IResult NotFound(string what, string id, string param) =>
        Error(StatusCodes.Status404NotFound, $"No such {what}: '{id}'", "not_found", param);

    public static IResult Unauthorized(string message) => Error(StatusCodes.Status401Unauthorized, message, "invalid_api_key");

    internal sealed record ErrorBody(string Message, string Type, string? Param, string? Code);
    internal sealed record ErrorEnvelope(ErrorBody Error);
    internal sealed record ErrorWithValidation(ErrorBody Error, object Validation);
}
