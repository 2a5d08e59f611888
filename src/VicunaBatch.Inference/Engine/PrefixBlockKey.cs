using System.Collections.Immutable;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// What a whole, computed KV block holds, as the prefix cache keys it (<see cref="BlockPool.Register"/>): the key of the
/// block before it in its sequence (null for the first) and its token ids. The keys of a sequence's blocks chain, so one
/// key stands for every token from position 0 to the block's end, as the block's keys and values depend on all of them.
/// Compared exactly (the previous key by reference: the pool's keys are unique while cached), so a hash collision can
/// never hand a request another prompt's KV.
/// </summary>
internal sealed class PrefixBlockKey : IEquatable<PrefixBlockKey>
{
    private readonly int _hash;

    public PrefixBlockKey(PrefixBlockKey? previous, ImmutableArray<int> tokens)
    {
        Previous = previous;
        Tokens = tokens;
        var hash = new HashCode();
        hash.Add(previous?._hash ?? 0);
        foreach (var token in tokens) hash.Add(token);
        _hash = hash.ToHashCode();
    }

    public PrefixBlockKey? Previous { get; }

    /// <summary>The block's token ids, <c>[blockSize]</c>.</summary>
    public ImmutableArray<int> Tokens { get; }

    public bool Equals(PrefixBlockKey? other) =>
        other is not null && _hash == other._hash && ReferenceEquals(Previous, other.Previous) && Tokens.AsSpan().SequenceEqual(other.Tokens.AsSpan());

    public override bool Equals(object? obj) => Equals(obj as PrefixBlockKey);

    public override int GetHashCode() => _hash;
}
