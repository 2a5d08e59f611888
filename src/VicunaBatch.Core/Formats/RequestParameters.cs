using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>What this server does with one of OpenAI's request body parameters.</summary>
internal enum ParameterUse
{
    /// <summary>Read into <see cref="BatchRequest"/> by <see cref="RequestFields"/> and honoured.</summary>
    Honoured,

    /// <summary>Accepted with any value its <see cref="RequestParameter.Accepts"/> takes; it changes no answer (who
    /// the end user is, tags, storage). A value of another type is <c>invalid_type</c>.</summary>
    Informational,

    /// <summary>Accepted only with the value that asks for nothing (<c>n: 1</c>, <c>echo: false</c>), which
    /// <see cref="RequestParameter.Accepts"/> says; any other value is <c>unsupported_parameter</c>.</summary>
    NeutralOnly,

    /// <summary>Any value but null is <c>unsupported_parameter</c>: a feature this server does not have.</summary>
    Refused,
}

/// <summary>The endpoints whose body has a parameter.</summary>
[Flags]
internal enum ParameterEndpoints
{
    Chat = 1,
    Completions = 2,
    Both = Chat | Completions,
}

/// <summary>One row of <see cref="RequestParameters.All"/>.</summary>
/// <param name="Accepts">Informational: the values of its type; NeutralOnly: the value that asks for nothing.</param>
/// <param name="Why">Informational: the type, as "must be …" ends; NeutralOnly and Refused: what the sender asked
/// for and does not get here, ending the <c>unsupported_parameter</c> message.</param>
internal sealed record RequestParameter(
    string Name, ParameterEndpoints On, ParameterUse Use, Func<JsonElement, bool>? Accepts = null, string Why = "");

/// <summary>
/// Every parameter of OpenAI's chat completions and completions request bodies and what each does here, in one table:
/// a body parameter not in it (or not of its endpoint) is <c>unknown_field</c>, so nothing a sender writes is silently
/// ignored. JSON null is the same as leaving a parameter out. Implementing a feature moves its row to <see cref="ParameterUse.Honoured"/> and teaches <see cref="RequestFields"/> to read it.
/// </summary>
internal static class RequestParameters
{
    private const string NoTools = "this model has no tool calling";
    private const ParameterEndpoints Chat = ParameterEndpoints.Chat, Completions = ParameterEndpoints.Completions, Both = ParameterEndpoints.Both;

    public static readonly IReadOnlyList<RequestParameter> All =
    [
        new("model", Both, ParameterUse.Honoured),
        new("messages", Chat, ParameterUse.Honoured),
        new("prompt", Completions, ParameterUse.Honoured),
        new("max_tokens", Both, ParameterUse.Honoured),
        new("max_completion_tokens", Both, ParameterUse.Honoured), // OpenAI's newer name for max_tokens
        new("temperature", Both, ParameterUse.Honoured),
        new("top_p", Both, ParameterUse.Honoured),
        new("seed", Both, ParameterUse.Honoured),
        new("stop", Both, ParameterUse.Honoured),

        new("user", Both, ParameterUse.Informational, IsString, "a string"),
        new("metadata", Chat, ParameterUse.Informational, IsObject, "an object"),
        new("store", Chat, ParameterUse.Informational, IsBoolean, "a boolean"),
        new("prompt_cache_key", Chat, ParameterUse.Informational, IsString, "a string"),
        new("safety_identifier", Chat, ParameterUse.Informational, IsString, "a string"),
        new("service_tier", Chat, ParameterUse.Informational, IsString, "a string"), // latency and price, never the answer

        new("n", Both, ParameterUse.Honoured),
        new("best_of", Completions, ParameterUse.Honoured), // only where it equals n (ChoiceFields)
        new("logprobs", Both, ParameterUse.Honoured),
        new("top_logprobs", Chat, ParameterUse.Honoured),
        new("response_format", Chat, ParameterUse.Honoured), // constrained decoding reads it
        new("echo", Completions, ParameterUse.NeutralOnly, IsFalse, "the prompt is not echoed back; send echo: false or leave it out"),
        new("suffix", Completions, ParameterUse.Refused, Why: "a completion is not inserted before a suffix"),
        new("logit_bias", Both, ParameterUse.NeutralOnly, IsEmptyObject, "token biases are not applied; send {} or leave it out"),
        new("presence_penalty", Both, ParameterUse.NeutralOnly, IsNumber(0), "penalties are not applied; send 0 or leave it out"),
        new("frequency_penalty", Both, ParameterUse.NeutralOnly, IsNumber(0), "penalties are not applied; send 0 or leave it out"),
        new("stream", Both, ParameterUse.NeutralOnly, IsFalse, "batch answers are not streamed; send stream: false or leave it out"),
        new("stream_options", Both, ParameterUse.Refused, Why: "batch answers are not streamed"),
        new("modalities", Chat, ParameterUse.NeutralOnly, IsTextOnly, "this model answers in text only; send [\"text\"] or leave it out"),
        new("audio", Chat, ParameterUse.Refused, Why: "this model answers in text only"),
        new("tools", Chat, ParameterUse.Refused, Why: NoTools),
        new("tool_choice", Chat, ParameterUse.Refused, Why: NoTools),
        new("parallel_tool_calls", Chat, ParameterUse.Refused, Why: NoTools),
        new("functions", Chat, ParameterUse.Refused, Why: NoTools),
        new("function_call", Chat, ParameterUse.Refused, Why: NoTools),
        new("reasoning_effort", Chat, ParameterUse.Refused, Why: "this model does not reason before it answers"),
        new("verbosity", Chat, ParameterUse.Refused, Why: "this model has no verbosity setting"),
        new("prediction", Chat, ParameterUse.Refused, Why: "predicted outputs are not used"),
        new("web_search_options", Chat, ParameterUse.Refused, Why: "this model does not search the web"),
    ];

    private static readonly Dictionary<string, RequestParameter> ByName = All.ToDictionary(p => p.Name, StringComparer.Ordinal);

    /// <summary>Refuses the first parameter of an OpenAI <paramref name="body"/> that is unknown to its endpoint, of
    /// the wrong type, or asks for what this server does not do; the honoured ones are left to <see cref="RequestFields"/>.</summary>
    public static void Check(JsonElement body, BatchEndpoint endpoint)
    {
        var on = endpoint == BatchEndpoint.ChatCompletions ? Chat : Completions;
        foreach (var property in body.EnumerateObject())
        {
            var (name, value) = (property.Name, property.Value);
            if (!ByName.TryGetValue(name, out var row))
                throw new LineRejection(LineErrorCode.UnknownField, $"unknown parameter \"{name}\"", name);
            if (!row.On.HasFlag(on))
                throw new LineRejection(LineErrorCode.UnknownField, $"{name} is not a parameter of {endpoint.ToUrl()}", name);
            if (value.ValueKind == JsonValueKind.Null) continue;
            switch (row.Use)
            {
                case ParameterUse.Informational when !row.Accepts!(value):
                    throw new LineRejection(LineErrorCode.InvalidType, $"{name} must be {row.Why}", name);
                case ParameterUse.NeutralOnly when !row.Accepts!(value):
                    throw new LineRejection(LineErrorCode.UnsupportedParameter, $"{name}: {Abbreviate(value)} is not supported: {row.Why}", name);
                case ParameterUse.Refused:
                    throw new LineRejection(LineErrorCode.UnsupportedParameter, $"{name} is not supported: {row.Why}", name);
            }
        }
    }

    /// <summary>A value as the sender wrote it, cut to 40 characters.</summary>
    private static string Abbreviate(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 40 ? text : text[..39] + "…";
    }

    private static bool IsString(JsonElement value) => value.ValueKind == JsonValueKind.String;

    private static bool IsObject(JsonElement value) => value.ValueKind == JsonValueKind.Object;

    private static bool IsBoolean(JsonElement value) => value.ValueKind is JsonValueKind.True or JsonValueKind.False;

    private static bool IsFalse(JsonElement value) => value.ValueKind == JsonValueKind.False;

    private static Func<JsonElement, bool> IsNumber(double neutral) =>
        value => value.ValueKind == JsonValueKind.Number && value.GetDouble() == neutral;

    private static bool IsEmptyObject(JsonElement value) => value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any();

    private static bool IsTextOnly(JsonElement value) =>
        value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 1
        && value[0].ValueKind == JsonValueKind.String && value[0].GetString() == "text";
}
