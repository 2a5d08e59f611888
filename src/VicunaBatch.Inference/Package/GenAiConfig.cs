using System.Text.Json;
using System.Text.Json.Serialization;

namespace VicunaBatch.Inference.Package;

/// <summary>The subset of ONNX Runtime GenAI's <c>genai_config.json</c> the engine reads.</summary>
public sealed record GenAiConfig(
    [property: JsonPropertyName("model")] GenAiModelSection Model,
    [property: JsonPropertyName("search")] GenAiSearchSection? Search,
    [property: JsonPropertyName("engine")] GenAiEngineSection? Engine = null)
{
    /// <summary>The decoder's attention variant: its inputs decide (a <c>block_table</c> input → paged).</summary>
    public AttentionVariant Attention => Model.Decoder.Inputs?.BlockTable is null ? AttentionVariant.GroupQuery : AttentionVariant.Paged;

    /// <summary>The paged package's <c>engine.dynamic_batching</c>; null for variant A.</summary>
    public GenAiDynamicBatching? DynamicBatching => Engine?.DynamicBatching;

    public static GenAiConfig Parse(string json, string sourceName)
    {
        GenAiConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(json, GenAiConfigJson.Default.GenAiConfig);
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
        Require(d.SlidingWindow is null,
            "model.decoder.sliding_window (sliding-window attention, as ONNX Runtime GenAI's model builder writes it for a model " +
            "with an attention window) is not supported: the engine attends over the whole context");
        Require(Search?.PastPresentShareBuffer != false,
            "search.past_present_share_buffer is false: the graph's present KV is a new, longer tensor each call (ONNX Runtime " +
            "GenAI's model builder writes that for attention other than GroupQueryAttention or PagedAttention); the engine needs " +
            "the present KV to share the past buffer");
        if (Attention == AttentionVariant.Paged)
        {
            var inputs = d.Inputs!;
            Require(inputs.CumulativeSequenceLengths is not null && inputs.PastSequenceLengths is not null && inputs.AttentionMetadata is not null,
                "a paged package (model.decoder.inputs.block_table) also names cumulative_sequence_lengths, past_sequence_lengths and attention_metadata");
            var blockSize = DynamicBatching?.BlockSize ?? 0;
            Require(blockSize >= 16 && (blockSize & (blockSize - 1)) == 0,
                $"engine.dynamic_batching.block_size must be a power of two >= 16 for a paged package, got {blockSize}");
        }
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
    [property: JsonPropertyName("outputs")] GenAiDecoderOutputs? Outputs,
    [property: JsonPropertyName("sliding_window")] JsonElement? SlidingWindow = null);

/// <summary>
/// The decoder's input names. Variant A has <c>attention_mask</c>, and <c>position_ids</c> when rotary runs outside the
/// attention node (ONNX Runtime GenAI's model builder writes it so where its provider cannot fuse rotary into
/// GroupQueryAttention); variant B (paged) the four length and block inputs instead.
/// </summary>
public sealed record GenAiDecoderInputs(
    [property: JsonPropertyName("input_ids")] string InputIds = "input_ids",
    [property: JsonPropertyName("attention_mask")] string AttentionMask = "attention_mask",
    [property: JsonPropertyName("past_key_names")] string PastKeyNames = "past_key_values.%d.key",
    [property: JsonPropertyName("past_value_names")] string PastValueNames = "past_key_values.%d.value",
    [property: JsonPropertyName("cumulative_sequence_lengths")] string? CumulativeSequenceLengths = null,
    [property: JsonPropertyName("past_sequence_lengths")] string? PastSequenceLengths = null,
    [property: JsonPropertyName("block_table")] string? BlockTable = null,
    [property: JsonPropertyName("attention_metadata")] string? AttentionMetadata = null,
    [property: JsonPropertyName("position_ids")] string? PositionIds = null);

/// <summary>Which attention node the decoder graph uses; the engine runs each its own way (<see cref="Onnx.EngineVariant"/>).</summary>
public enum AttentionVariant
{
    /// <summary>Variant A: <c>com.microsoft.GroupQueryAttention</c> over KV slots; CPU and CUDA.</summary>
    GroupQuery,

    /// <summary>Variant B: <c>com.microsoft.PagedAttention</c> over KV blocks; CUDA only, float16/bfloat16.</summary>
    Paged,
}

public sealed record GenAiEngineSection(
    [property: JsonPropertyName("dynamic_batching")] GenAiDynamicBatching? DynamicBatching);

/// <summary>
/// A paged package's sizing. <c>block_size</c> is fixed by the graph (the KV inputs' dimension 1). The rest are defaults:
/// <c>num_blocks</c> 0 = fit GPU memory; <c>max_batch_size</c> applies when the engine's MaxBatchSize is 0;
/// <c>max_scheduled_tokens</c> is recorded for ONNX Runtime GenAI (vicuna-batch takes --max-scheduled-tokens).
/// </summary>
public sealed record GenAiDynamicBatching(
    [property: JsonPropertyName("block_size")] int BlockSize,
    [property: JsonPropertyName("num_blocks")] int NumBlocks = 0,
    [property: JsonPropertyName("max_batch_size")] int MaxBatchSize = 256,
    [property: JsonPropertyName("max_scheduled_tokens")] int MaxScheduledTokens = 0);

public sealed record GenAiDecoderOutputs(
    [property: JsonPropertyName("logits")] string Logits = "logits",
    [property: JsonPropertyName("present_key_names")] string PresentKeyNames = "present.%d.key",
    [property: JsonPropertyName("present_value_names")] string PresentValueNames = "present.%d.value");

public sealed record GenAiSearchSection(
    [property: JsonPropertyName("max_length")] int MaxLength,
    [property: JsonPropertyName("past_present_share_buffer")] bool PastPresentShareBuffer = true,
    [property: JsonPropertyName("do_sample")] bool DoSample = false,
    [property: JsonPropertyName("temperature")] float Temperature = 1f,
    [property: JsonPropertyName("top_k")] int TopK = 0,
    [property: JsonPropertyName("top_p")] float TopP = 1f);

/// <summary>
/// Compile-time JSON metadata for <see cref="GenAiConfig"/>: every command that opens a model parses its config first,
/// on the way to the model load, where the reflection-based serializer would build its metadata at run time.
/// </summary>
[JsonSourceGenerationOptions(ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(GenAiConfig))]
internal sealed partial class GenAiConfigJson : JsonSerializerContext;
