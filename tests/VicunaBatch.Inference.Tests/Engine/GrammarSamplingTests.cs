using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>The masked row the grammar's pick samples from, against one id at a time.</summary>
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
}
