using System.Text.Json;
using System.Text.RegularExpressions;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// A model of a scheduled evaluation: a package run here (<see cref="Package"/>, or the newest package folder in
/// <see cref="NewestPackageIn"/>, found when a run starts) or a model a batch API serves (<see cref="Url"/>, its key
/// in <see cref="ApiKeyFile"/> or <c>VICUNABATCH_API_KEY</c>), asked at <see cref="Temperature"/> for <see cref="MaxTokens"/>.
/// </summary>
internal sealed record EvalModel(string Name, string? Package, string? NewestPackageIn, string? Url, string? ApiKeyFile, float Temperature, int MaxTokens);

/// <summary>The judge of a scheduled evaluation: a model at a batch API, the modes it judges in, the baseline, tokens per judgment.</summary>
internal sealed record EvalJudge(string Url, string Model, string? ApiKeyFile, IReadOnlyList<JudgeMode> Modes, string? Baseline, int MaxTokens);

/// <summary>
/// An evaluation that runs on a schedule, a definition of <c>kind</c> <c>"eval"</c> beside the summarization pipelines
/// (<c>serve --pipelines DIR</c> reads both; <c>eval run FILE</c> runs one now): questions, models, judge, output folder,
/// cron schedule and webhook, in the pipelines' conventions (snake_case, paths relative to the file, a
/// <see cref="PipelineSchedule"/>, a <c>whsec_</c> webhook secret). <see cref="Parse"/> rejects a bad definition with a
/// <see cref="PipelineDefinitionException"/> naming the field.
/// </summary>
internal sealed partial record EvalDefinition(
    string Name, string Questions, string Out, IReadOnlyList<EvalModel> Models, EvalJudge Judge, PipelineSchedule? Schedule, PipelineWebhook? Webhook)
{
    public const string Kind = "eval";

    private static readonly HashSet<string> Fields = ["kind", "name", "questions", "out", "models", "judge", "schedule", "webhook"];

    /// <summary>Whether a definition file's JSON is an evaluation's (<c>"kind": "eval"</c>) rather than a pipeline's.</summary>
    public static bool IsEval(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("kind", out var kind)
                && kind.ValueKind == JsonValueKind.String && kind.GetString() == Kind;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Reads a definition file; its relative paths are relative to the file's folder.</summary>
    public static EvalDefinition Load(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"evaluation definition not found: {path}");
        return Parse(File.ReadAllText(path), Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public static EvalDefinition Parse(string json, string baseDir)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new PipelineDefinitionException("", $"not JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new PipelineDefinitionException("", "the definition must be a JSON object");
        Reject(root, "", Fields);
        if (Str(root, "kind") != Kind) throw new PipelineDefinitionException("kind", $"must be \"{Kind}\"");
        var name = Str(root, "name");
        if (!NamePattern().IsMatch(name))
            throw new PipelineDefinitionException("name", $"\"{name}\" must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit");
        string PathOf(string value) => Path.GetFullPath(Path.Combine(baseDir, value));
        var models = new List<EvalModel>();
        if (!root.TryGetProperty("models", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            throw new PipelineDefinitionException("models", "must be a non-empty array");
        foreach (var (m, i) in list.EnumerateArray().Select((m, i) => (m, i)))
        {
            var field = $"models[{i}]";
            if (m.ValueKind != JsonValueKind.Object) throw new PipelineDefinitionException(field, "must be an object");
            Reject(m, field + ".", ["name", "package", "newest_package_in", "url", "api_key_file", "temperature", "max_tokens"]);
            var modelName = Str(m, "name", field + ".");
            if (!ServedModels.IsValidName(modelName)) throw new PipelineDefinitionException(field + ".name", $"\"{modelName}\" {ServedModels.NameRule}");
            var (package, newest, url) = (OptStr(m, "package", field + "."), OptStr(m, "newest_package_in", field + "."), OptStr(m, "url", field + "."));
            if (new[] { package, newest, url }.Count(v => v is not null) != 1)
                throw new PipelineDefinitionException(field, "needs exactly one of \"package\" (a package folder), \"newest_package_in\" (a folder of packages) or \"url\" (a batch API)");
            if (url is not null) CheckUrl(url, field + ".url");
            var temperature = m.TryGetProperty("temperature", out var t) ? Number(t, field + ".temperature", 0, 2) : 0.7;
            var maxTokens = m.TryGetProperty("max_tokens", out var mt) ? (int)Number(mt, field + ".max_tokens", 1, int.MaxValue, integer: true) : 1024;
            models.Add(new EvalModel(modelName, package is null ? null : PathOf(package), newest is null ? null : PathOf(newest), url,
                OptStr(m, "api_key_file", field + ".") is { } key ? PathOf(key) : null, (float)temperature, maxTokens));
        }
        if (models.Select(m => m.Name).Distinct().Count() < models.Count) throw new PipelineDefinitionException("models", "two models have the same name");
        var judge = ParseJudge(root.TryGetProperty("judge", out var j) && j.ValueKind == JsonValueKind.Object ? j
            : throw new PipelineDefinitionException("judge", "is required (an object)"), models, PathOf);
        var schedule = OptStr(root, "schedule") is { } s ? PipelineSchedule.Parse(s, "schedule") : null;
        var webhook = root.TryGetProperty("webhook", out var w) && w.ValueKind != JsonValueKind.Null ? PipelineWebhook.Parse(w) : null;
        return new EvalDefinition(name, PathOf(Str(root, "questions")), PathOf(Str(root, "out")), models, judge, schedule, webhook);
    }

    private static EvalJudge ParseJudge(JsonElement j, IReadOnlyList<EvalModel> models, Func<string, string> pathOf)
    {
        Reject(j, "judge.", ["url", "model", "api_key_file", "modes", "baseline", "max_tokens"]);
        var url = Str(j, "url", "judge.");
        CheckUrl(url, "judge.url");
        var modes = new List<JudgeMode>();
        if (j.TryGetProperty("modes", out var list))
        {
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0) throw new PipelineDefinitionException("judge.modes", "must be a non-empty array");
            foreach (var mode in list.EnumerateArray())
            {
                modes.Add((mode.ValueKind == JsonValueKind.String ? JudgeModes.Parse(mode.GetString()!) : null)
                    ?? throw new PipelineDefinitionException("judge.modes", $"{mode.GetRawText()} is not single, pairwise-baseline or pairwise-all"));
            }
        }
        else modes.Add(JudgeMode.Single);
        var baseline = OptStr(j, "baseline", "judge.");
        if (modes.Contains(JudgeMode.PairwiseBaseline) && baseline is null) throw new PipelineDefinitionException("judge.baseline", "is required with pairwise-baseline");
        if (baseline is not null && models.All(m => m.Name != baseline)) throw new PipelineDefinitionException("judge.baseline", $"\"{baseline}\" is none of the models");
        if (modes.Any(m => m.IsPairwise()) && models.Count < 2) throw new PipelineDefinitionException("judge.modes", "pairwise modes need two models at least");
        var maxTokens = j.TryGetProperty("max_tokens", out var mt) ? (int)Number(mt, "judge.max_tokens", 1, int.MaxValue, integer: true) : 2048;
        return new EvalJudge(url, Str(j, "model", "judge."), OptStr(j, "api_key_file", "judge.") is { } key ? pathOf(key) : null, modes, baseline, maxTokens);
    }

    private static void CheckUrl(string url, string field)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new PipelineDefinitionException(field, $"\"{url}\" is not an absolute http(s) URL");
    }

    private static void Reject(JsonElement element, string prefix, IReadOnlyCollection<string> known)
    {
        foreach (var property in element.EnumerateObject())
            if (!known.Contains(property.Name))
                throw new PipelineDefinitionException(prefix + property.Name, $"unknown field (known: {string.Join(", ", known)})");
    }

    private static string Str(JsonElement element, string name, string prefix = "") =>
        OptStr(element, name, prefix) ?? throw new PipelineDefinitionException(prefix + name, "is required");

    private static string? OptStr(JsonElement element, string name, string prefix = "")
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String || value.GetString()!.Length == 0)
            throw new PipelineDefinitionException(prefix + name, "must be a non-empty string");
        return value.GetString();
    }

    private static double Number(JsonElement value, string field, double min, double max, bool integer = false)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var n) || n < min || n > max || (integer && n != Math.Floor(n)))
            throw new PipelineDefinitionException(field, $"{value.GetRawText()} must be {(integer ? "an integer" : "a number")} from {min} to {max}");
        return n;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,31}$")]
    private static partial Regex NamePattern();
}
