using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace VicunaBatch.Inference.Tests.Fixtures;

/// <summary>Per-layer KV tensors, each <c>[batch, kvHeads, Length, headSize]</c>, held as float32.</summary>
public sealed record KvCache(int Batch, int Length, float[][] Keys, float[][] Values);

/// <summary>One <c>Run</c>'s outputs: logits <c>[batch, seq, vocab]</c> and the presents.</summary>
public sealed record StepOutput(float[] Logits, int SequenceLength, int Vocab, KvCache Present)
{
    public float[] LogitsAt(int row, int position) =>
        Logits.AsSpan(((row * SequenceLength) + position) * Vocab, Vocab).ToArray();
}

/// <summary>A plain <see cref="InferenceSession"/> over a variant-A package: named inputs, presents copied out.</summary>
public sealed class GraphSession : IDisposable
{
    private readonly InferenceSession _session;

    public GraphSession(string packageDir)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(packageDir, "genai_config.json")));
        var model = config.RootElement.GetProperty("model");
        var decoder = model.GetProperty("decoder");
        NumLayers = decoder.GetProperty("num_hidden_layers").GetInt32();
        NumKvHeads = decoder.GetProperty("num_key_value_heads").GetInt32();
        HeadSize = decoder.GetProperty("head_size").GetInt32();
        Vocab = model.GetProperty("vocab_size").GetInt32();
        _session = new InferenceSession(Path.Combine(packageDir, decoder.GetProperty("filename").GetString()!));
        KvType = _session.InputMetadata["past_key_values.0.key"].ElementDataType;
    }

    public int NumLayers { get; }

    public int NumKvHeads { get; }

    public int HeadSize { get; }

    public int Vocab { get; }

    public TensorElementType KvType { get; }

    public InferenceSession Session => _session;

    /// <summary>Runs rows of equal length (<paramref name="ids"/> [B][S], <paramref name="mask"/> [B][T]) after <paramref name="past"/>.</summary>
    public StepOutput Run(long[][] ids, long[][] mask, KvCache? past = null)
    {
        int batch = ids.Length, seq = ids[0].Length, total = mask[0].Length, pastLength = past?.Length ?? 0;
        var inputs = new Dictionary<string, OrtValue>
        {
            ["input_ids"] = OrtValue.CreateTensorValueFromMemory(ids.SelectMany(r => r).ToArray(), [batch, seq]),
            ["attention_mask"] = OrtValue.CreateTensorValueFromMemory(mask.SelectMany(r => r).ToArray(), [batch, total]),
        };
        long[] pastShape = [batch, NumKvHeads, pastLength, HeadSize];
        for (var i = 0; i < NumLayers; i++)
        {
            inputs[$"past_key_values.{i}.key"] = KvValue(past?.Keys[i], pastShape);
            inputs[$"past_key_values.{i}.value"] = KvValue(past?.Values[i], pastShape);
        }

        var outputNames = new List<string> { "logits" };
        for (var i = 0; i < NumLayers; i++)
        {
            outputNames.Add($"present.{i}.key");
            outputNames.Add($"present.{i}.value");
        }

        try
        {
            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, inputs, outputNames);
            var logits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
            var presentLength = (int)outputs[1].GetTensorTypeAndShape().Shape[2];
            var keys = new float[NumLayers][];
            var values = new float[NumLayers][];
            for (var i = 0; i < NumLayers; i++)
            {
                keys[i] = ToFloats(outputs[1 + (2 * i)]);
                values[i] = ToFloats(outputs[2 + (2 * i)]);
            }

            return new StepOutput(logits, seq, Vocab, new KvCache(batch, presentLength, keys, values));
        }
        finally
        {
            foreach (var value in inputs.Values)
            {
                value.Dispose();
            }
        }
    }

    public void Dispose() => _session.Dispose();

    private OrtValue KvValue(float[]? data, long[] shape)
    {
        if (data is null || data.Length == 0)
        {
            return OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, KvType, shape);
        }

        return KvType == TensorElementType.Float16
            ? OrtValue.CreateTensorValueFromMemory(data.Select(v => (Float16)v).ToArray(), shape)
            : OrtValue.CreateTensorValueFromMemory(data, shape);
    }

    private static float[] ToFloats(OrtValue value) =>
        value.GetTensorTypeAndShape().ElementDataType == TensorElementType.Float16
            ? value.GetTensorDataAsSpan<Float16>().ToArray().Select(v => (float)v).ToArray()
            : value.GetTensorDataAsSpan<float>().ToArray();
}
