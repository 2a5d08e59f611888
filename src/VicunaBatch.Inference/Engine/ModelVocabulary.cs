using VicunaBatch.Inference.Grammar;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// What the engine needs to know of the vocabulary: end-of-sequence ids and, when a tokenizer exists, how to turn ids
/// into text and what bytes each token writes (for constrained output).
/// </summary>
public sealed class ModelVocabulary
{
    private readonly Func<IReadOnlyList<int>, string>? _decode;
    private readonly Lazy<TokenTrie>? _trie;

    /// <param name="tokenBytes">Per token id the bytes it writes (<see cref="Text.TokenTexts"/>); null: no constrained output.</param>
    public ModelVocabulary(IReadOnlyList<int> eosTokenIds, Func<IReadOnlyList<int>, string>? decode, IReadOnlyList<byte[]?>? tokenBytes = null)
    {
        EosTokenIds = eosTokenIds;
        _decode = decode;
        TokenBytes = tokenBytes;
        _trie = tokenBytes is null ? null : new Lazy<TokenTrie>(() => new TokenTrie(tokenBytes));
    }

    public IReadOnlyList<byte[]?>? TokenBytes { get; }

    /// <summary>The token texts as a trie, built at first use; null without <see cref="TokenBytes"/>.</summary>
    public TokenTrie? Trie => _trie?.Value;

    public IReadOnlyList<int> EosTokenIds { get; }

    public bool CanDecode => _decode is not null;

    public bool IsEos(int tokenId)
    {
        foreach (var eos in EosTokenIds)
        {
            if (eos == tokenId)
            {
                return true;
            }
        }
        return false;
    }

    public string? Decode(IReadOnlyList<int> ids) => _decode?.Invoke(ids);
}
