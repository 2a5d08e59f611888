using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The KV cache manager: which part of the runner's KV memory each running sequence holds. The scheduler asks it, never
/// the runner. <see cref="SlotTable"/> hands out KV slots (GroupQueryAttention), <see cref="BlockTables"/> KV blocks
/// (PagedAttention). Running out is an expected answer (<see cref="TryReserve"/> → false: the scheduler waits or
/// preempts); a broken invariant throws with the values involved.
/// </summary>
internal interface IKvCacheManager
{
    /// <summary>What the memory holds and how much of it running sequences hold now.</summary>
    KvCacheUsage Usage { get; }

    /// <summary>
    /// Makes <paramref name="sequenceId"/>'s KV hold <paramref name="numTokens"/> tokens (its computed tokens and this
    /// step's), taking memory at its first reservation. False, and nothing changed, when the memory is short.
    /// </summary>
    bool TryReserve(long sequenceId, int numTokens);

    /// <summary>Units (slots or blocks) no sequence holds now.</summary>
    int NumFreeUnits { get; }

    /// <summary>
    /// The units <paramref name="sequenceId"/> must still take to hold <paramref name="numTokens"/> tokens (at most
    /// the longest request the manager holds): what admission counts so that every running request can grow to its end.
    /// </summary>
    int UnitsToGrow(long sequenceId, int numTokens);
    /// <summary>
    /// At admission: gives <paramref name="sequence"/>, holding nothing, the KV of the longest prefix of its prompt that
    /// the prefix cache holds (never the whole of it), shared with other requests, and returns how many tokens that is:
    /// the sequence starts with them computed. 0 over KV slots, or with the prefix cache off.
    /// </summary>
    int TakeCachedPrefix(Sequence sequence);

    /// <summary>
    /// After a step, once <paramref name="sequence"/>'s <see cref="Sequence.NumComputed"/> counts its tokens: caches what
    /// of its KV later requests of the same prefix may take (nothing over KV slots, or with the prefix cache off).
    /// </summary>
    void CacheComputed(Sequence sequence);

    /// <summary>Cached KV blocks no request held that were handed out again (0 over KV slots).</summary>
    long NumEvictedBlocks { get; }

    /// <summary>Where <paramref name="sequenceId"/>'s KV lives; it must hold some.</summary>
    KvPlace PlaceOf(long sequenceId);

    /// <summary>Gives back everything <paramref name="sequenceId"/> holds (nothing when it holds none).</summary>
    void Free(long sequenceId);

    /// <summary>
    /// Gives <paramref name="childId"/> (holding nothing) KV that holds <paramref name="parentId"/>'s first
    /// <paramref name="numTokens"/> tokens once the runner has made the returned fork's copies
    /// (<see cref="IStepRunner.CopyKv"/>): n choices of one prompt share its prefill. False, and nothing changed, when
    /// the memory is short.
    /// </summary>
    bool TryFork(long parentId, long childId, int numTokens, [NotNullWhen(true)] out KvFork? fork);

    /// <summary>
    /// Preemption to host memory: moves <paramref name="sequenceId"/>'s first <paramref name="numTokens"/> tokens of KV
    /// into free host blocks and gives its device KV back; <paramref name="copies"/> are what the runner copies
    /// (<see cref="IStepRunner.SwapOut"/>). False, and nothing changed, when the host blocks are short (or there are none).
    /// </summary>
    bool TrySwapOut(long sequenceId, int numTokens, out ImmutableArray<KvUnitCopy> copies);

    /// <summary>
    /// Resumes a swapped-out <paramref name="sequenceId"/>: device KV for <paramref name="numTokens"/> tokens (its
    /// swapped tokens and this step's), its swapped KV copied back (<paramref name="copies"/>, <see cref="IStepRunner.SwapIn"/>)
    /// and its host blocks freed. False, and nothing changed, when the device KV is short.
    /// </summary>
    bool TrySwapIn(long sequenceId, int numTokens, out ImmutableArray<KvUnitCopy> copies);
}

/// <summary>The unit a KV cache manager hands out.</summary>
public enum KvUnit
{
    /// <summary>A KV slot of the maximum length, one per running request (GroupQueryAttention).</summary>
    Slot,

    /// <summary>A KV block, as many per request as its tokens fill (PagedAttention).</summary>
    Block,
}

/// <summary>A KV cache in its manager's unit: <paramref name="NumUnits"/> of <paramref name="UnitTokens"/> tokens each, <paramref name="NumInUse"/> held by running requests.</summary>
public readonly record struct KvCacheUsage(KvUnit Unit, int NumUnits, int UnitTokens, int NumInUse);

/// <summary>
/// What the runner copies so a forked sequence's KV holds its parent's first <paramref name="NumTokens"/> tokens:
/// each copy's first tokens of unit <c>From</c> (a KV slot or a KV block, the manager's <see cref="KvUnit"/>) into unit
/// <c>To</c>, in every layer's keys and values. Blocks the two share (whole ones, never written again) need no copy.
/// </summary>
public sealed record KvFork(long ParentId, long ChildId, int NumTokens, ImmutableArray<KvUnitCopy> Copies);

/// <summary>Tokens [0, <paramref name="NumTokens"/>) of KV unit <paramref name="From"/> copied into unit <paramref name="To"/>.</summary>
public readonly record struct KvUnitCopy(int From, int To, int NumTokens);

/// <summary>A pool of <paramref name="NumBlocks"/> KV blocks of <paramref name="BlockSize"/> tokens, shared by every request.</summary>
public sealed record KvBlocks(int NumBlocks, int BlockSize);
