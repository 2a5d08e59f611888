using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>vicuna-batch generate</c>: runs prompts through one engine together. Text prompts are BOS + SentencePiece ids;
/// <c>--prompt-ids</c> / <c>prompt_ids</c> are used exactly as given.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var modelOptions = new ModelOptions();
        var prompt = new Option<string?>("--prompt") { Description = "One text prompt (completion: BOS + its tokens)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "One prompt as comma-separated token ids, e.g. 1,2,3." };
        var requests = new Option<FileInfo?>("--requests")
        {
            Description = "JSONL of {\"id\", \"prompt\" | \"prompt_ids\", \"max_tokens\"?, \"temperature\"?, \"seed\"?, \"n\"?}; all run together (n: that many choices, sharing the prompt's prefill, one output line each).",
        };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy.", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass.", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong?>("--seed") { Description = "Sampling seed: same seed, same text." };
        var json = new Option<bool>("--json") { Description = "One JSON line per request: {\"id\", \"ids\", \"text\", \"finish_reason\"}." };
        var logits = new Option<bool>("--logits")
        {
            Description = "With --json: add \"logits\", the raw logits of every sampled step ([steps][vocab]; one row more than \"ids\" when it stopped on EOS).",
        };
        var topLogprobs = new Option<int?>("--top-logprobs")
        {
            Description = $"With --json: add \"logprobs\", per generated token {{\"id\", \"logprob\", \"top\": [[id, logprob], ...]}} with this many alternatives (0-{TokenLogprobs.MaxTop}).",
        };
        var command = new Command("generate", "Generate from prompts with one continuous-batching engine.")
        {
            prompt, promptIds, requests, maxTokens, temperature, topP, seed, json, logits, topLogprobs,
        };
        modelOptions.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var defaults = new SamplingParams(r.GetValue(temperature), 0, r.GetValue(topP), r.GetValue(seed));
            if (r.GetValue(logits) && !r.GetValue(json))
            {
                throw new UsageException("--logits needs --json");
            }
            if (r.GetValue(topLogprobs) is not null && !r.GetValue(json))
            {
                throw new UsageException("--top-logprobs needs --json");
            }
            var specs = ReadSpecs(r.GetValue(prompt), r.GetValue(promptIds), r.GetValue(requests), r.GetValue(maxTokens), defaults);
            using var model = modelOptions.Open(r);
            var results = await RunAsync(model, specs, r.GetValue(logits), r.GetValue(topLogprobs), cancellationToken);
            foreach (var result in results)
            {
                Console.Out.WriteLine(r.GetValue(json) ? ToJson(result, specs.Any(s => s.NumChoices > 1)) : ToText(result));
            }
            return results.Any(x => x.FinishReason == FinishReason.Error) ? 1 : 0;
        });
        return command;
    }

    /// <summary>A prompt as given on the command line or in a requests file; text is tokenized once the model is open.</summary>
    internal sealed record PromptSpec(string Id, string? Text, IReadOnlyList<int>? Ids, int MaxTokens, SamplingParams Sampling, int NumChoices = 1);

    internal static async Task<IReadOnlyList<GenerationResult>> RunAsync(
        LoadedModel model, IReadOnlyList<PromptSpec> specs, bool returnLogits = false, int? topLogprobs = null,
        CancellationToken cancellationToken = default)
    {
        var requests = specs.Select(s => new GenerationRequest(
            s.Id, s.Ids ?? EncodeText(model, s.Text!), s.MaxTokens, s.Sampling, ReturnLogits: returnLogits, TopLogprobs: topLogprobs,
            NumChoices: s.NumChoices)).ToList();
        await using var host = new EngineHost(model.Engine, ownsEngine: false);
        var choices = await Task.WhenAll(requests.Select(q => host.GenerateChoicesAsync(q, cancellationToken)));
        return [.. choices.SelectMany(c => c)];
    }

    private static IReadOnlyList<int> EncodeText(LoadedModel model, string text) =>
        model.Tokenizer is { } tokenizer
            ? PromptEncoder.EncodeCompletion(tokenizer, text)
            : throw new UsageException($"{model.Package.Location} {model.Package.NoTokenizer}: give token ids (--prompt-ids or prompt_ids)");

    private static List<PromptSpec> ReadSpecs(string? prompt, string? promptIds, FileInfo? requests, int maxTokens, SamplingParams sampling)
    {
        var given = (prompt is null ? 0 : 1) + (promptIds is null ? 0 : 1) + (requests is null ? 0 : 1);
        if (given != 1)
        {
            throw new UsageException("give exactly one of --prompt, --prompt-ids, --requests");
        }
        if (prompt is not null)
        {
            return [new PromptSpec("0", prompt, null, maxTokens, sampling)];
        }
        if (promptIds is not null)
        {
            return [new PromptSpec("0", null, ParseIds(promptIds, "--prompt-ids"), maxTokens, sampling)];
        }
        var specs = new List<PromptSpec>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(requests!.FullName))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            specs.Add(ParseRequestLine(line, $"{requests.Name}:{lineNumber}", maxTokens, sampling));
        }
        return specs;
    }

    private static PromptSpec ParseRequestLine(string line, string where, int maxTokens, SamplingParams sampling)
    {
        try
        {
            var node = JsonNode.Parse(line)?.AsObject() ?? throw new UsageException($"{where}: not a JSON object");
            var id = node["id"]?.ToString() ?? throw new UsageException($"{where}: \"id\" is missing");
            var text = node["prompt"]?.GetValue<string>();
            var ids = node["prompt_ids"]?.AsArray().Select(x => x!.GetValue<int>()).ToList();
            if ((text is null) == (ids is null))
            {
                throw new UsageException($"{where}: give exactly one of \"prompt\", \"prompt_ids\"");
            }
            var lineSampling = sampling with
            {
                Temperature = node["temperature"]?.GetValue<float>() ?? sampling.Temperature,
                Seed = node["seed"]?.GetValue<ulong>() ?? sampling.Seed,
            };
            return new PromptSpec(id, text, ids, node["max_tokens"]?.GetValue<int>() ?? maxTokens, lineSampling, node["n"]?.GetValue<int>() ?? 1);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new UsageException($"{where}: {e.Message}");
        }
    }

    internal static int[] ParseIds(string text, string what)
    {
        try
        {
            return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new UsageException($"{what}: expected comma-separated integers, got '{text}'");
        }
    }

    /// <param name="withChoice">Name each line's choice (some request asked for several).</param>
    private static string ToJson(GenerationResult result, bool withChoice)
    {
        var line = new JsonObject
        {
            ["id"] = result.Id,
            ["ids"] = new JsonArray(result.OutputIds.Select(i => (JsonNode)i).ToArray()),
            ["text"] = result.Text,
            ["finish_reason"] = FinishReasonName(result.FinishReason),
            ["prompt_tokens"] = result.PromptTokens,
            ["completion_tokens"] = result.CompletionTokens,
            ["error"] = result.Error,
        };
        if (withChoice) line["choice"] = result.Choice;
        if (result.Logits is { } logits)
        {
            line["logits"] = new JsonArray(logits.Select(row => (JsonNode)new JsonArray(row.Select(v => (JsonNode)v).ToArray())).ToArray()); // floats as their shortest round-trip text
        }
        if (result.Logprobs is { } logprobs)
        {
            line["logprobs"] = new JsonArray(logprobs.Select(step => (JsonNode)new JsonObject
            {
                ["id"] = step.Chosen.TokenId,
                ["logprob"] = step.Chosen.Logprob,
                ["top"] = new JsonArray(step.Top.Select(e => (JsonNode)new JsonArray(e.TokenId, e.Logprob)).ToArray()),
            }).ToArray());
        }
        return line.ToJsonString(JsonOutput.Options);
    }

    private static string ToText(GenerationResult result) => result.Error is { } error
        ? $"[{result.Id}] error: {error}"
        : $"[{result.Id}{(result.Choice > 0 ? $"#{result.Choice}" : "")}] ({FinishReasonName(result.FinishReason)}, {result.CompletionTokens} tokens) {result.Text ?? string.Join(',', result.OutputIds)}";

    internal static string FinishReasonName(FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        FinishReason.Cancelled => "cancelled",
        _ => "error",
    };
}
