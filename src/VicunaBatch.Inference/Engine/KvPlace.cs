using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>Where a sequence's keys and values live in the runner's KV memory, as its <see cref="IKvCacheManager"/> placed them.</summary>
public abstract record KvPlace;

/// <summary>
/// KV slot <paramref name="Index"/> (GroupQueryAttention): row <c>Index</c> of every layer's key and value buffers
/// <c>[numSlots, kvHeads, maxLength, headSize]</c>, room for the maximum length from the start.
/// </summary>
public sealed record KvSlot(int Index) : KvPlace
{
    /// <summary>The slot of <paramref name="place"/>; a block table there is a broken invariant.</summary>
    public static int IndexOf(KvPlace place) =>
        place is KvSlot slot ? slot.Index : throw new InvalidOperationException($"expected a KV slot, got {place}");

    public override string ToString() => $"slot {Index}";
}

/// <summary>
/// A block table (PagedAttention): token p lives in block <c>Blocks[p / blockSize]</c> at row <c>p % blockSize</c> of
/// every layer's key and value buffers <c>[numBlocks, blockSize, kvHeads, headSize]</c>.
/// </summary>
public sealed record KvBlockTable(ImmutableArray<int> Blocks) : KvPlace
{
    /// <summary>The block ids of <paramref name="place"/>; a slot there is a broken invariant.</summary>
    public static ImmutableArray<int> BlocksOf(KvPlace place) =>
        place is KvBlockTable table ? table.Blocks : throw new InvalidOperationException($"expected a KV block table, got {place}");

    public override string ToString() => $"blocks [{string.Join(' ', Blocks)}]";
}
