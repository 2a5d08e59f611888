using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// Brand-new prompts admitted together on adjacent slots share one right-padded call: their logits, and the KV rows
/// later decodes read, equal those of each prompt run alone.
/// </summary>
[Collection("models")]
public sealed class BatchedPrefillTests(ModelFixture models)
{
    private static readonly int[][] Prompts = [[1, 7, 4242, 31999, 15, 900, 123], [1, 20000, 9, 31], [1, 88], [1, 5, 6, 7, 8, 9, 10, 11, 12, 13]];

    [Fact]
    public void NewPromptsOnAdjacentSlots_runInOneCall_withTheLogitsOfEachAlone()
    {
        var package = ModelPackage.Load(models.TinyPackage);
        using var together = new GqaRunner(package, numSlots: 4, maxLength: 64, maxChunkTokens: 64, numThreads: 1);
        var first = together.Execute(new StepPlan([], [.. Prompts.Select((p, i) => Chunk(i, i, p))]));
        Assert.Equal(1, together.NumRuns);
        var batched = Rows(first);
        // one decode step over the four slots reads the KV the batched call wrote
        var decode = Rows(together.Execute(new StepPlan([.. Prompts.Select((p, i) => new DecodeRow(i, 42, p.Length, new KvSlot(i)))], [])));

        for (var i = 0; i < Prompts.Length; i++)
        {
            using var alone = new GqaRunner(package, numSlots: 4, maxLength: 64, maxChunkTokens: 64, numThreads: 1);
            var prefill = Rows(alone.Execute(new StepPlan([], [Chunk(i, i, Prompts[i])])))[i];
            // slots below i are free: the runner pads the call with fillers there
            var next = Rows(alone.Execute(new StepPlan([new DecodeRow(i, 42, Prompts[i].Length, new KvSlot(i))], [])))[i];
            AssertClose(prefill, batched[i]);
            AssertClose(next, decode[i]);
        }
    }

    [Fact]
    public void A_continuing_chunk_or_a_gap_between_slots_runs_apart()
    {
        var package = ModelPackage.Load(models.TinyPackage);
        using var runner = new GqaRunner(package, numSlots: 4, maxLength: 64, maxChunkTokens: 64, numThreads: 1);
        // slots 0 and 2 (a gap), then slot 3 with a first chunk that is not the whole prompt
        runner.Execute(new StepPlan([], [Chunk(0, 0, Prompts[0]), Chunk(2, 2, Prompts[1]), new PrefillChunk(3, 0, [.. Prompts[3][..4]], false, new KvSlot(3))]));
        Assert.Equal(3, runner.NumRuns);
    }

    private static PrefillChunk Chunk(long id, int slot, int[] prompt) => new(id, 0, [.. prompt], NeedsLogits: true, new KvSlot(slot));

    private static Dictionary<long, float[]> Rows(StepOutputs outputs) =>
        outputs.SequenceIds.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => outputs.LogitsOf(x.i).ToArray());

    private static void AssertClose(float[] expected, float[] actual)
    {
        var worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst < 1e-4, $"max |delta logit| {worst}");
    }
}
