using System.Text.Json;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// One benchmark question as FastChat's llm_judge keeps them (<c>question.jsonl</c>: the Vicuna benchmark's 80, MT-bench's
/// 80 of two turns): <c>{"question_id", "category", "turns": [...]}</c>. Other fields (MT-bench's <c>reference</c>) are
/// read past.
/// </summary>
internal sealed record EvalQuestion(long QuestionId, string Category, IReadOnlyList<string> Turns)
{
    /// <summary>
    /// Every question of <paramref name="path"/>, in file order. A line that is not such a question, or a question id
    /// given twice, is an <see cref="InvalidDataException"/> naming the file and line: nothing is asked of a model from a
    /// file read in part.
    /// </summary>
    public static IReadOnlyList<EvalQuestion> ReadAll(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"questions file not found: {path}");
        var questions = new List<EvalQuestion>();
        var seen = new HashSet<long>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var question = Parse(line, $"{path}:{lineNumber}");
            if (!seen.Add(question.QuestionId))
                throw new InvalidDataException($"{path}:{lineNumber}: question_id {question.QuestionId} is given twice");
            questions.Add(question);
        }
        if (questions.Count == 0) throw new InvalidDataException($"{path} holds no question");
        return questions;
    }

    private static EvalQuestion Parse(string line, string where)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(line).RootElement; }
        catch (JsonException e) { throw new InvalidDataException($"{where}: not JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: a question is a JSON object");
        if (!root.TryGetProperty("question_id", out var id) || id.ValueKind != JsonValueKind.Number || !id.TryGetInt64(out var questionId))
            throw new InvalidDataException($"{where}: \"question_id\" must be an integer");
        var category = root.TryGetProperty("category", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
        if (!root.TryGetProperty("turns", out var turns) || turns.ValueKind != JsonValueKind.Array || turns.GetArrayLength() == 0)
            throw new InvalidDataException($"{where}: \"turns\" must be a non-empty array of strings");
        var texts = new List<string>();
        foreach (var turn in turns.EnumerateArray())
        {
            if (turn.ValueKind != JsonValueKind.String || turn.GetString()!.Length == 0)
                throw new InvalidDataException($"{where}: \"turns\" must be a non-empty array of strings");
            texts.Add(turn.GetString()!);
        }
        return new EvalQuestion(questionId, category, texts);
    }
}
