using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>Admission order: arrival, or the longest request (prompt + max_tokens) first with a bounded wait.</summary>
public sealed class WaitingQueueTests
{
    [Fact]
    public void LongestFirst_admitsByPromptPlusMaxTokensWithArrivalBreakingTies()
    {
        var scheduler = SchedulerSteps.OverSlots(numSlots: 2, maxScheduledTokens: 64, AdmissionOrder.LongestFirst).Scheduler;
        // lengths (prompt + max_tokens): 0 → 12, 1 → 52, 2 → 32, 3 → 52
        var sequences = new[] { NewSequence(0, 2, 10), NewSequence(1, 2, 50), NewSequence(2, 2, 30), NewSequence(3, 2, 50) };
        foreach (var s in sequences) scheduler.Add(s);

        var first = scheduler.Schedule();

        Assert.Equal([1L, 3L], first.Prefills.Select(p => p.SequenceId));
        Assert.Equal([0L, 2L], scheduler.Waiting.Select(s => s.SequenceId)); // still listed in arrival order
        sequences[1].NumComputed = sequences[3].NumComputed = 2; // prompts done, as the engine's update records
        scheduler.Finish(sequences[3]);
        Assert.Equal([2L], scheduler.Schedule().Prefills.Select(p => p.SequenceId));
        sequences[2].NumComputed = 2;
        scheduler.Finish(sequences[1]);
        Assert.Equal([0L], scheduler.Schedule().Prefills.Select(p => p.SequenceId));
    }

    [Fact]
    public void Arrival_admitsInArrivalOrderWhateverTheLength()
    {
        var scheduler = SchedulerSteps.OverSlots(numSlots: 2, maxScheduledTokens: 64, AdmissionOrder.Arrival).Scheduler;
        foreach (var s in new[] { NewSequence(0, 2, 10), NewSequence(1, 2, 50), NewSequence(2, 2, 30) }) scheduler.Add(s);

        Assert.Equal([0L, 1L], scheduler.Schedule().Prefills.Select(p => p.SequenceId));
    }

    [Fact]
    public void LongestFirst_aShortRequestOvertakenBy16TimesTheSlotsGoesNext()
    {
        // 1 slot: the short request 0 may be overtaken by 16 later, longer arrivals, then it is admitted
        var scheduler = SchedulerSteps.OverSlots(numSlots: 1, maxScheduledTokens: 64, AdmissionOrder.LongestFirst).Scheduler;
        var shortOne = NewSequence(0, 1, 1);
        scheduler.Add(shortOne);
        var admitted = new List<long>();
        for (var i = 1; i <= 20; i++)
        {
            scheduler.Add(NewSequence(i, 1, 100)); // a longer request arrives before each admission
            var plan = scheduler.Schedule();
            var chunk = Assert.Single(plan.Prefills);
            admitted.Add(chunk.SequenceId);
            scheduler.Finish(scheduler.Running.Single());
        }

        Assert.Equal(WaitingQueue.MaxPassOvers, admitted.IndexOf(0));
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (long)i), admitted.Take(16));
    }

    [Fact]
    public void LongestFirst_aCancelledWaitingRequestIsNeverAdmitted()
    {
        var scheduler = SchedulerSteps.OverSlots(numSlots: 1, maxScheduledTokens: 64, AdmissionOrder.LongestFirst).Scheduler;
        var longOne = NewSequence(0, 2, 90);
        scheduler.Add(NewSequence(1, 2, 10));
        scheduler.Add(longOne);
        scheduler.Finish(longOne);

        Assert.Equal([1L], scheduler.Schedule().Prefills.Select(p => p.SequenceId));
        Assert.Equal(0, scheduler.NumWaiting);
    }

    private static Sequence NewSequence(long id, int promptLength, int maxTokens) =>
        new(id, new GenerationRequest($"r{id}", Enumerable.Range(0, promptLength).Select(i => (int)id * 100 + i).ToArray(), maxTokens), 0);
}
