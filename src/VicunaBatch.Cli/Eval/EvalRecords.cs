using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VicunaBatch.Cli.Eval;

/// <summary>How answers are judged: each alone on 1-10, each model against a baseline, or every pair of models.</summary>
internal enum JudgeMode
{
    Single,
    PairwiseBaseline,
    PairwiseAll,
}

internal static class JudgeModes
{
    /// <summary>The mode's name on the command line and in judgment file names (FastChat's <c>--mode</c> values).</summary>
    public static string Name(this JudgeMode mode) => mode switch
    {
        JudgeMode.Single => "single",
        JudgeMode.PairwiseBaseline => "pairwise-baseline",
        _ => "pairwise-all",
    };

    public static JudgeMode? Parse(string name) =>
        Enum.GetValues<JudgeMode>().Select(m => (JudgeMode?)m).FirstOrDefault(m => m!.Value.Name() == name);

    public static bool IsPairwise(this JudgeMode mode) => mode != JudgeMode.Single;
}

/// <summary>Why a request got no answer: the error line's code and message.</summary>
internal sealed record RequestError(string Code, string Message);

/// <summary>
/// One model's answer to one question, a line of <c>model_answer/NAME.jsonl</c> in FastChat's format:
/// <c>{"question_id", "answer_id", "model_id", "choices": [{"index": 0, "turns": [...]}], "tstamp"}</c>. A turn that got
/// no answer is <see cref="EvalFolder.ErrorText"/>.
/// </summary>
internal sealed record ModelAnswer(long QuestionId, string AnswerId, string ModelId, IReadOnlyList<string> Turns, double Tstamp)
{
    /// <summary>A stable id for the same answer (FastChat draws a random one): a hash of the model, the question and the turns.</summary>
    public static string AnswerIdOf(string model, long questionId, IReadOnlyList<string> turns)
    {
        var text = string.Join("\u0000", [model, questionId.ToString(CultureInfo.InvariantCulture), .. turns]);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..22];
    }

    public JsonObject ToJson() => new()
    {
        ["question_id"] = QuestionId,
        ["answer_id"] = AnswerId,
        ["model_id"] = ModelId,
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["turns"] = new JsonArray([.. Turns.Select(t => (JsonNode)JsonValue.Create(t))]) }),
        ["tstamp"] = Tstamp,
    };

    /// <summary>Every answer of an answer file, by question id; a line not in the format is an error naming the line.</summary>
    public static IReadOnlyDictionary<long, ModelAnswer> ReadAll(string path)
    {
        var answers = new Dictionary<long, ModelAnswer>();
        foreach (var (root, where) in EvalJsonLines.Read(path))
        {
            var choice = root["choices"] is JsonArray { Count: > 0 } choices ? choices[0] : null;
            if (choice?["turns"] is not JsonArray turns || turns.Any(t => t?.GetValueKind() != JsonValueKind.String))
                throw new InvalidDataException($"{where}: \"choices\"[0].\"turns\" must be an array of strings");
            var answer = new ModelAnswer(
                EvalJsonLines.Long(root, "question_id", where), EvalJsonLines.String(root, "answer_id", where), EvalJsonLines.String(root, "model_id", where),
                [.. turns.Select(t => t!.GetValue<string>())], root["tstamp"]?.GetValue<double>() ?? 0);
            answers[answer.QuestionId] = answer;
        }
        return answers;
    }
}

/// <summary>
/// A single-answer grade, a line of <c>model_judgment/JUDGE_single.jsonl</c> in FastChat's fields: <c>question_id, model,
/// judge: [judge model, prompt name], user_prompt, judgment, score, turn, tstamp</c>; <see cref="Score"/> is -1 when the
/// judgment holds no rating (or the request failed: then <c>judgment</c> is <c>$ERROR$</c> and <c>error</c> says why).
/// </summary>
internal sealed record SingleJudgment(
    long QuestionId, string Model, string JudgeModel, string PromptName, string UserPrompt, string Judgment, double Score, int Turn, double Tstamp,
    RequestError? Error = null)
{
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["question_id"] = QuestionId,
            ["model"] = Model,
            ["judge"] = new JsonArray(JudgeModel, PromptName),
            ["user_prompt"] = UserPrompt,
            ["judgment"] = Judgment,
            ["score"] = EvalJsonLines.Number(Score),
            ["turn"] = Turn,
            ["tstamp"] = Tstamp,
        };
        if (Error is not null) json["error"] = EvalJsonLines.ErrorJson(Error);
        return json;
    }

    public static SingleJudgment Read(JsonObject root, string where)
    {
        var (judgeModel, promptName) = EvalJsonLines.Judge(root, where);
        return new SingleJudgment(
            EvalJsonLines.Long(root, "question_id", where), EvalJsonLines.String(root, "model", where), judgeModel, promptName,
            EvalJsonLines.String(root, "user_prompt", where), EvalJsonLines.String(root, "judgment", where),
            root["score"] is JsonValue score && score.TryGetValue<double>(out var s) ? s : throw new InvalidDataException($"{where}: \"score\" must be a number"),
            (int)EvalJsonLines.Long(root, "turn", where), root["tstamp"]?.GetValue<double>() ?? 0, EvalJsonLines.ErrorOf(root["error"]));
    }
}

/// <summary>
/// A pairwise verdict judged in both orders, a line of <c>model_judgment/JUDGE_pairwise-*.jsonl</c> in FastChat's fields:
/// <c>question_id, model_1, model_2, g1_winner, g2_winner, judge, g1_user_prompt, g1_judgment, g2_user_prompt,
/// g2_judgment, turn, tstamp</c>. Game 1 shows model_1's answer as A, game 2 shows model_2's as A; both winners are said
/// of the models (<c>model_1</c>, <c>model_2</c>, <c>tie</c>), or <c>error</c> when the judgment holds no verdict.
/// </summary>
internal sealed record PairJudgment(
    long QuestionId, string Model1, string Model2, string G1Winner, string G2Winner, string JudgeModel, string PromptName,
    string G1UserPrompt, string G1Judgment, string G2UserPrompt, string G2Judgment, int Turn, double Tstamp,
    RequestError? G1Error = null, RequestError? G2Error = null)
{
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["question_id"] = QuestionId,
            ["model_1"] = Model1,
            ["model_2"] = Model2,
            ["g1_winner"] = G1Winner,
            ["g2_winner"] = G2Winner,
            ["judge"] = new JsonArray(JudgeModel, PromptName),
            ["g1_user_prompt"] = G1UserPrompt,
            ["g1_judgment"] = G1Judgment,
            ["g2_user_prompt"] = G2UserPrompt,
            ["g2_judgment"] = G2Judgment,
            ["turn"] = Turn,
            ["tstamp"] = Tstamp,
        };
        if (G1Error is not null) json["g1_error"] = EvalJsonLines.ErrorJson(G1Error);
        if (G2Error is not null) json["g2_error"] = EvalJsonLines.ErrorJson(G2Error);
        return json;
    }

    public static PairJudgment Read(JsonObject root, string where)
    {
        var (judgeModel, promptName) = EvalJsonLines.Judge(root, where);
        string S(string name) => EvalJsonLines.String(root, name, where);
        return new PairJudgment(
            EvalJsonLines.Long(root, "question_id", where), S("model_1"), S("model_2"), S("g1_winner"), S("g2_winner"), judgeModel, promptName,
            S("g1_user_prompt"), S("g1_judgment"), S("g2_user_prompt"), S("g2_judgment"), (int)EvalJsonLines.Long(root, "turn", where),
            root["tstamp"]?.GetValue<double>() ?? 0, EvalJsonLines.ErrorOf(root["g1_error"]), EvalJsonLines.ErrorOf(root["g2_error"]));
    }
}

/// <summary>The JSON lines of the evaluation's files: read with the file and line of each problem, written one object a line.</summary>
internal static class EvalJsonLines
{
    public static IEnumerable<(JsonObject Root, string Where)> Read(string path)
    {
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var where = $"{path}:{lineNumber}";
            JsonNode? node;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{where}: not JSON: {e.Message}"); }
            yield return (node as JsonObject ?? throw new InvalidDataException($"{where}: not a JSON object"), where);
        }
    }

    public static void Write(string path, IEnumerable<JsonObject> lines)
    {
        var text = new StringBuilder();
        foreach (var line in lines) text.Append(line.ToJsonString(JsonOutput.Options)).Append('\n');
        EvalFolder.WriteAtomically(path, Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Seconds since the Unix epoch, as FastChat's <c>time.time()</c>.</summary>
    public static double Now(TimeProvider time) => time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>A whole number as an integer (FastChat's ratings are <c>8</c>, <c>-1</c>), else as it is (<c>7.5</c>).</summary>
    public static JsonNode Number(double value) => value == Math.Floor(value) && Math.Abs(value) < 1e15 ? JsonValue.Create((long)value) : JsonValue.Create(value);

    public static JsonObject ErrorJson(RequestError error) => new() { ["code"] = error.Code, ["message"] = error.Message };

    public static RequestError? ErrorOf(JsonNode? node) => node is JsonObject error
        ? new RequestError(error["code"]?.GetValue<string>() ?? "", error["message"]?.GetValue<string>() ?? "")
        : null;

    public static long Long(JsonObject root, string name, string where) =>
        root[name] is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<long>(out var n) ? n
            : root[name] is JsonValue d && d.TryGetValue<double>(out var x) && x == Math.Floor(x) ? (long)x
            : throw new InvalidDataException($"{where}: \"{name}\" must be an integer");

    public static string String(JsonObject root, string name, string where) =>
        root[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>()
            : throw new InvalidDataException($"{where}: \"{name}\" must be a string");

    public static (string Model, string Prompt) Judge(JsonObject root, string where) =>
        root["judge"] is JsonArray { Count: 2 } judge && judge[0]?.GetValueKind() == JsonValueKind.String && judge[1]?.GetValueKind() == JsonValueKind.String
            ? (judge[0]!.GetValue<string>(), judge[1]!.GetValue<string>())
            : throw new InvalidDataException($"{where}: \"judge\" must be [judge model, prompt name]");
}
