using System.Numerics.Tensors;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>The masked row the grammar's pick samples from, against one id at a time; greedy over few allowed ids, against the masked row's search.</summary>
public sealed class GrammarSamplingTests
{
    /// <param name="density">Chance that a word of the mask is all ones; else it is empty or a few random bits.</param>
    [Theory]
    [InlineData(1000, 0.0)]
    [InlineData(1000, 0.5)]
    [InlineData(1000, 1.0)]
    [InlineData(1024, 0.3)]
    [InlineData(70, 0.0)]
    public void CopyAllowed_keepsExactlyTheAllowedLogits(int vocab, double density)
    {
        var random = new Random(vocab + (int)(density * 10));
        var logits = Enumerable.Range(0, vocab).Select(_ => (float)random.NextDouble() * 8 - 4).ToArray();
        // one word past the row, as when the vocabulary has more ids than the logit row
        var allowed = new ulong[vocab / 64 + 2];
        for (var w = 0; w < allowed.Length; w++)
        {
            allowed[w] = random.NextDouble() < density ? ulong.MaxValue
                : random.Next(3) == 0 ? 0 : 1UL << random.Next(64) | 1UL << random.Next(64);
        }
        var masked = new float[vocab];

        var any = GrammarSampling.CopyAllowed(allowed, logits, masked);

        var anyExpected = false;
        for (var id = 0; id < vocab; id++)
        {
            var keep = (allowed[id >> 6] >> (id & 63) & 1) != 0;
            Assert.Equal(keep ? logits[id] : float.NegativeInfinity, masked[id]);
            anyExpected |= keep;
        }
        Assert.Equal(anyExpected, any);
    }

    [Fact]
    public void CopyAllowed_onlyIdsPastTheRow_allowsNothing()
    {
        var allowed = new ulong[2];
        allowed[1] = 1UL << 10; // id 74, past a row of 70
        var masked = new float[70];

        Assert.False(GrammarSampling.CopyAllowed(allowed, new float[70], masked));
        Assert.All(masked, m => Assert.Equal(float.NegativeInfinity, m));
    }

    /// <summary>Values that make a search go wrong: NaN, both zeros, infinities, ties.</summary>
    private static readonly float[] Awkward = [float.NaN, 0f, -0f, float.NegativeInfinity, float.PositiveInfinity, 1.5f, 1.5f, -2f];

    [Theory]
    [InlineData(1000, 1)]
    [InlineData(1000, 3)]
    [InlineData(70, 5)]
    [InlineData(32000, 40)]
    public void ArgMaxOfFew_picksWhatTheMaskedRowPicks(int vocab, int seed)
    {
        var random = new Random(seed);
        var masked = new float[vocab];
        for (var round = 0; round < 400; round++)
        {
            var logits = new float[vocab];
            var allowed = new ulong[vocab / 64 + 2];
            for (var i = 0; i < 1 + random.Next(12); i++)
            {
                var id = random.Next(allowed.Length * 64);
                allowed[id >> 6] |= 1UL << (id & 63);
            }
            for (var id = 0; id < vocab; id++)
            {
                // every third round awkward values only; odd rounds without NaN, so the zeros and ties decide
                var awkward = round % 3 == 0 || random.Next(4) == 0;
                var from = round % 2 == 0 ? 0 : 1;
                logits[id] = awkward ? Awkward[from + random.Next(Awkward.Length - from)] : (float)random.NextDouble() * 4 - 2;
            }
            var few = GrammarSampling.ArgMaxOfFew(allowed, logits);
            var any = GrammarSampling.CopyAllowed(allowed, logits, masked);
            if (!any) Assert.Equal(-1, few);
            else if (few != GrammarSampling.TooMany) Assert.Equal(TensorPrimitives.IndexOfMax<float>(masked), few);
        }
    }

    [Theory]
    [InlineData(1000, 0.0)]
    [InlineData(1000, 0.9)]
    [InlineData(32000, 0.99)]
    [InlineData(70, 0.5)]
    public void PickGreedy_picksWhatTheMaskedRowPicks(int vocab, double density)
    {
        var random = new Random(vocab);
        var (masked, scratch) = (new float[vocab], new float[vocab]);
        for (var round = 0; round < 200; round++)
        {
            var allowed = new ulong[vocab / 64 + 2];
            for (var w = 0; w < allowed.Length; w++)
            {
                allowed[w] = random.NextDouble() < density ? ulong.MaxValue & ~(1UL << random.Next(64)) : 1UL << random.Next(64);
            }
            var logits = new float[vocab];
            for (var id = 0; id < vocab; id++)
            {
                logits[id] = random.Next(round % 4 == 0 ? 2 : 50) == 0 ? Awkward[random.Next(Awkward.Length)] : (float)random.NextDouble();
            }
            var expected = GrammarSampling.CopyAllowed(allowed, logits, masked) ? TensorPrimitives.IndexOfMax<float>(masked) : -1;

            Assert.Equal(expected, GrammarSampling.PickGreedy(allowed, logits, scratch));
        }
    }

    [Fact]
    public void ArgMaxOfFew_everyAllowedLogitNegativeInfinity_leavesItToTheMaskedRow()
    {
        var logits = Enumerable.Repeat(float.NegativeInfinity, 128).ToArray();
        logits[0] = 3f;
        var allowed = new ulong[] { 0, 1UL << 5 };
        Assert.Equal(GrammarSampling.TooMany, GrammarSampling.ArgMaxOfFew(allowed, logits));
    }
}
