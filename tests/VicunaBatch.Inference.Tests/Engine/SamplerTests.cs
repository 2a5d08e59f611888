using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

public sealed class SamplerTests
{
    private static readonly float[] Logits = [0.5f, 3.0f, -1.0f, 2.9f, 1.0f];

    /// <summary>log of (0.1, 0.2, 0.3, 0.4): softmax at temperature 1 gives those probabilities back.</summary>
    private static readonly float[] KnownLogits = [MathF.Log(0.1f), MathF.Log(0.2f), MathF.Log(0.3f), MathF.Log(0.4f)];

    [Fact]
    public void Sample_greedy_returnsTheArgmax()
    {
        var sampler = new Sampler();

        Assert.Equal(1, sampler.Sample(Logits, SamplingParams.Greedy, 0.99f));
        Assert.Equal(3, sampler.Sample([0f, 0f, 0f, 7f], new SamplingParams(Temperature: 0f, TopK: 2, TopP: 0.5f), 0.5f));
    }

    [Theory]
    [InlineData(1e-45f)] // 1 / T overflows float: (l - max) x inf would be NaN at the max
    [InlineData(1e-38f)]
    public void Sample_temperatureTooSmallToInvert_isTheArgmax(float temperature)
    {
        var sampling = new SamplingParams(Temperature: temperature, TopP: 0.9f);

        Assert.Equal(float.IsInfinity(1f / temperature), sampling.IsGreedy);
        Assert.All(Draw(Logits, sampling, seed: 3, count: 50), token => Assert.Equal(1, token));
    }

    [Fact]
    public void Sample_temperatureWithSameSeed_givesTheSameSequenceTwice()
    {
        var sampling = new SamplingParams(Temperature: 1.5f, Seed: 42);

        var first = Draw(Logits, sampling, seed: 42, count: 64);
        var second = Draw(Logits, sampling, seed: 42, count: 64);
        var otherSeed = Draw(Logits, sampling, seed: 43, count: 64);

        Assert.Equal(first, second);
        Assert.NotEqual(first, otherSeed);
        Assert.True(first.Distinct().Count() >= 3, string.Join(",", first));
    }

    [Theory]
    [InlineData(0.3f)]
    [InlineData(1f)]
    [InlineData(5f)]
    [InlineData(100f)]
    public void Sample_topK1_equalsGreedyAtAnyTemperature(float temperature)
    {
        var draws = Draw(Logits, new SamplingParams(Temperature: temperature, TopK: 1), seed: 7, count: 200);

        Assert.All(draws, token => Assert.Equal(1, token));
    }

    [Fact]
    public void Sample_tinyTopP_keepsOnlyTheMostLikelyToken()
    {
        var draws = Draw(Logits, new SamplingParams(Temperature: 10f, TopP: 1e-4f), seed: 7, count: 200);

        Assert.All(draws, token => Assert.Equal(1, token));
    }

    [Fact]
    public void Sample_manyDraws_frequenciesMatchSoftmax()
    {
        var frequencies = Frequencies(new SamplingParams(Temperature: 1f), seed: 2024);

        AssertNear([0.1, 0.2, 0.3, 0.4], frequencies);
    }

    [Fact]
    public void Sample_temperature2_frequenciesMatchSoftmaxOfHalvedLogits()
    {
        var frequencies = Frequencies(new SamplingParams(Temperature: 2f), seed: 5);

        // p_i^(1/2) normalised
        var roots = new[] { 0.1, 0.2, 0.3, 0.4 }.Select(Math.Sqrt).ToArray();
        AssertNear(roots.Select(r => r / roots.Sum()).ToArray(), frequencies);
    }

    [Fact]
    public void Sample_topK3_frequenciesAreRenormalisedOverTheThreeBest()
    {
        var frequencies = Frequencies(new SamplingParams(Temperature: 1f, TopK: 3), seed: 11);

        AssertNear([0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9], frequencies);
        Assert.Equal(0, frequencies[0]);
    }

    [Fact]
    public void Sample_topP05_keepsTheSmallestHeadReachingHalfTheMass()
    {
        // 0.4 < 0.5, 0.4 + 0.3 >= 0.5: tokens 3 and 2 stay
        var frequencies = Frequencies(new SamplingParams(Temperature: 1f, TopP: 0.5f), seed: 13);

        AssertNear([0, 0, 3.0 / 7, 4.0 / 7], frequencies);
        Assert.Equal(0, frequencies[0]);
        Assert.Equal(0, frequencies[1]);
    }

    [Theory]
    [InlineData(0.05f)]
    [InlineData(0.5f)]
    [InlineData(0.9f)]
    [InlineData(0.99f)]
    public void KeptWeights_topP_areTheShortestSortedHeadReachingTopPOfTheMass(float topP)
    {
        var random = new Random(5);
        var sampler = new Sampler();
        for (var trial = 0; trial < 20; trial++)
        {
            var logits = Enumerable.Range(0, 2000).Select(_ => (float)(random.NextDouble() * 8 - 4)).ToArray();

            var kept = sampler.KeptWeights(logits, new SamplingParams(Temperature: 0.7f, TopP: topP)).ToArray();

            // what a sort does: the heaviest tokens, one by one, until they carry topP of the total
            var max = logits.Max();
            var weights = logits.Select(l => Math.Exp((l - max) / 0.7)).ToArray();
            var need = topP * weights.Sum();
            var head = new List<int>();
            var mass = 0.0;
            foreach (var i in Enumerable.Range(0, weights.Length).OrderByDescending(i => weights[i]))
            {
                head.Add(i);
                mass += weights[i];
                if (mass >= need) break;
            }
            Assert.Equal(head.Order(), Enumerable.Range(0, kept.Length).Where(i => kept[i] > 0));
        }
    }

    [Fact]
    public void KeptWeights_topK_areTheKHeaviest()
    {
        var random = new Random(9);
        var logits = Enumerable.Range(0, 500).Select(_ => (float)random.NextDouble()).ToArray();

        var kept = new Sampler().KeptWeights(logits, new SamplingParams(Temperature: 1f, TopK: 17)).ToArray();

        Assert.Equal(Enumerable.Range(0, 500).OrderByDescending(i => logits[i]).Take(17).Order(), Enumerable.Range(0, 500).Where(i => kept[i] > 0));
    }

    private static List<int> Draw(float[] logits, SamplingParams sampling, ulong seed, int count)
    {
        var sampler = new Sampler();
        var rng = new SamplingRng(seed);
        return Enumerable.Range(0, count).Select(_ => sampler.Sample(logits, sampling, Sampler.Uniform(rng))).ToList();
    }

    private static double[] Frequencies(SamplingParams sampling, ulong seed)
    {
        const int draws = 100_000;
        var counts = new double[KnownLogits.Length];
        foreach (var token in Draw(KnownLogits, sampling, seed, draws))
        {
            counts[token]++;
        }
        return counts.Select(c => c / draws).ToArray();
    }

    /// <summary>0.01 is over six standard deviations of a frequency from 100,000 draws.</summary>
    private static void AssertNear(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 0.01, $"token {i}: expected {expected[i]:F4}, got {actual[i]:F4}");
        }
    }
}
