using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Fixtures;

/// <summary>
/// The CPU twin of a paged (variant B) package (<c>model-export/tools/paged_twin.py</c>): every node but PagedAttention,
/// run for one request with no past.
/// </summary>
public sealed class PagedTwin : IDisposable
{
    private readonly InferenceSession _session;

    /// <summary>Writes the twin of <paramref name="pagedPackage"/> into a new folder of <paramref name="models"/> and opens it.</summary>
    public PagedTwin(ModelFixture models, string pagedPackage)
    {
        var dir = models.NewDirectory("paged-twin");
        models.RunScript("tools/paged_twin.py", pagedPackage, dir);
        _session = new InferenceSession(Path.Combine(dir, "model.onnx"));
    }

    /// <summary>The logits of <paramref name="prompt"/>'s last token ([1, vocab] in the graph; the row here).</summary>
    public float[] LastLogits(long[] prompt, int vocab)
    {
        using var ids = OrtValue.CreateTensorValueFromMemory(prompt.ToArray(), [prompt.Length]);
        using var cumulative = OrtValue.CreateTensorValueFromMemory(new[] { 0, prompt.Length }, [2]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions,
            new Dictionary<string, OrtValue> { ["input_ids"] = ids, ["cumulative_sequence_lengths"] = cumulative }, ["logits"]);
        var shape = outputs[0].GetTensorTypeAndShape().Shape;
        if (shape is not [1, var v] || v != vocab)
        {
            throw new InvalidOperationException($"the twin's logits are [{string.Join(", ", shape)}], not [1, {vocab}]");
        }
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public void Dispose() => _session.Dispose();
}
