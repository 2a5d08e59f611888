using System.Text.Json;
using System.Text.Json.Serialization;

namespace VicunaBatch.Inference.Package;

/// <summary>The subset of ONNX Runtime GenAI's <c>genai_config.json</c> the engine reads.</summary>
public sealed record GenAiConfig(
    [property: JsonPropertyName("model")] GenAiModelSection Model,
    [property: JsonPropertyName("search")] GenAiSearchSection? Search)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static GenAiConfig Parse(string json, string sourceName)
    {
        GenAiConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<GenAiConfig>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new ModelPackageException($"{sourceName}: invalid JSON ({e.Message})", e);
        }
        if (config?.Model?.Decoder is null)
        {
            throw new ModelPackageException($"{sourceName}: missing \"model.decoder\" section");
        }
        config.Validate(sourceName);
        return config;
    }

    private void Validate(string sourceName)
    {
        var d = Model.Decoder;
        void Require(bool ok, string what)
        {
            if (!ok)
            {
                throw new ModelPackageException($"{sourceName}: {what}");
            }
        }
        Require(Model.ContextLength > 0, $"model.context_length must be positive, got {Model.ContextLength}");
        Require(Model.VocabSize > 0, $"model.vocab_size must be positive, got {Model.VocabSize}");
        Require(d.NumHiddenLayers > 0, $"model.decoder.num_hidden_layers must be positive, got {d.NumHiddenLayers}");
        Require(d.NumKeyValueHeads > 0, $"model.decoder.num_key_value_heads must be positive, got {d.NumKeyValueHeads}");
        Require(d.HeadSize > 0, $"model.decoder.head_size must be positive, got {d.HeadSize}");
        Require(!string.IsNullOrEmpty(d.Filename), "model.decoder.filename is missing");
    }
}

public sealed record GenAiModelSection(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("bos_token_id")] int BosTokenId,
    [property: JsonPropertyName("eos_token_id")] JsonElement EosTokenIdRaw,
    [property: JsonPropertyName("pad_token_id")] int PadTokenId,
    [property: JsonPropertyName("context_length")] int ContextLength,
    [property: JsonPropertyName("vocab_size")] int VocabSize,
    [property: JsonPropertyName("decoder")] GenAiDecoderSection Decoder)
{
    /// <summary>GenAI allows one id or an array of ids; the engine stops on any of them.</summary>
    public IReadOnlyList<int> EosTokenIds => EosTokenIdRaw.ValueKind switch
    {
        JsonValueKind.Number => [EosTokenIdRaw.GetInt32()],
        JsonValueKind.Array => EosTokenIdRaw.EnumerateArray().Select(e => e.GetInt32()).ToArray(),
        _ => [],
    };
}

public sealed record GenAiDecoderSection(
    [property: JsonPropertyName("filename")] string Filename,
    [property: JsonPropertyName("head_size")] int HeadSize,
    [property: JsonPropertyName("hidden_size")] int HiddenSize,
    [property: JsonPropertyName("num_attention_heads")] int NumAttentionHeads,
    [property: JsonPropertyName("num_hidden_layers")] int NumHiddenLayers,
    [property: JsonPropertyName("num_key_value_heads")] int NumKeyValueHeads,
    [property: JsonPropertyName("inputs")] GenAiDecoderInputs? Inputs,
    [property: JsonPropertyName("outputs")] GenAiDecoderOutputs? Outputs);

public sealed record GenAiDecoderInputs(
    [property: JsonPropertyName("input_ids")] string InputIds = "input_ids",
    [property: JsonPropertyName("attention_mask")] string AttentionMask = "attention_mask",
    [property: JsonPropertyName("past_key_names")] string PastKeyNames = "past_key_values.%d.key",
    [property: JsonPropertyName("past_value_names")] string PastValueNames = "past_key_values.%d.value");

public sealed record GenAiDecoderOutputs(
    [property: JsonPropertyName("logits")] string Logits = "logits",
    [property: JsonPropertyName("present_key_names")] string PresentKeyNames = "present.%d.key",
    [property: JsonPropertyName("present_value_names")] string PresentValueNames = "present.%d.value");

public sealed record GenAiSearchSection(
    [property: JsonPropertyName("max_length")] int MaxLength,
    [property: JsonPropertyName("past_present_share_buffer")] bool PastPresentShareBuffer,
    [property: JsonPropertyName("do_sample")] bool DoSample,
    [property: JsonPropertyName("temperature")] float Temperature = 1f,
    [property: JsonPropertyName("top_k")] int TopK = 0,
    [property: JsonPropertyName("top_p")] float TopP = 1f);
