using System.Text.Json;

namespace VicunaBatch.Core.Formats;

/// <summary>
/// Reads a completions <c>prompt</c> in each of OpenAI's forms: a string, an array of strings, an array of token ids,
/// an array of arrays of token ids. An array of strings or of id arrays is several prompts, each answered with its own
/// choices. Whether an id is in the model's vocabulary is known only where the model is: the executor checks it.
/// </summary>
internal static class PromptFields
{
    /// <summary>Most prompts one line may carry.</summary>
    public const int MaxPrompts = 128;

    private const string Forms = "prompt must be a string, an array of strings, an array of token ids or an array of arrays of token ids";

    /// <summary>The prompts, first to last: at least one, each with exactly one of text or ids.</summary>
    public static IReadOnlyList<CompletionPrompt> Read(JsonElement prompt)
    {
        if (prompt.ValueKind == JsonValueKind.String) return [new CompletionPrompt(NotEmpty(prompt.GetString()!, "prompt"), null)];
        if (prompt.ValueKind != JsonValueKind.Array) throw new LineRejection(LineErrorCode.InvalidType, Forms, "prompt");
        int count = prompt.GetArrayLength();
        if (count == 0) throw Empty("prompt");
        var kind = prompt[0].ValueKind;
        if (kind == JsonValueKind.Number) return [new CompletionPrompt(null, ReadIds(prompt, "prompt"))];
        if (kind is not (JsonValueKind.String or JsonValueKind.Array) || prompt.EnumerateArray().Any(p => p.ValueKind != kind))
            throw new LineRejection(LineErrorCode.InvalidType, Forms, "prompt");
        if (count > MaxPrompts)
            throw new LineRejection(LineErrorCode.InvalidParameter, $"prompt holds {count} prompts; a line may hold at most {MaxPrompts}", "prompt");
        var prompts = new List<CompletionPrompt>(count);
        foreach (var item in prompt.EnumerateArray())
        {
            var path = $"prompt[{prompts.Count}]";
            prompts.Add(kind == JsonValueKind.String ? new(NotEmpty(item.GetString()!, path), null) : new(null, ReadIds(item, path)));
        }
        return prompts;
    }

    private static IReadOnlyList<int> ReadIds(JsonElement array, string path)
    {
        var ids = new List<int>(array.GetArrayLength());
        foreach (var item in array.EnumerateArray())
        {
            var itemPath = $"{path}[{ids.Count}]";
            if (item.ValueKind != JsonValueKind.Number)
                throw new LineRejection(LineErrorCode.InvalidType, $"{itemPath} must be a token id, as every item of a prompt of token ids", "prompt");
            if (!item.TryGetInt32(out var id) || id < 0)
                throw new LineRejection(LineErrorCode.InvalidParameter, $"{itemPath} is {item.GetRawText()}, not a token id (an integer from 0)", "prompt");
            ids.Add(id);
        }
        return ids.Count > 0 ? ids : throw Empty(path);
    }

    private static string NotEmpty(string text, string path) => text.Length > 0 ? text : throw Empty(path);

    private static LineRejection Empty(string path) => new(LineErrorCode.InvalidParameter, $"{path} must not be empty", "prompt");
}
