namespace VicunaBatch.Inference.Engine;

/// <summary>What the engine needs to know of the vocabulary: end-of-sequence ids and, when a tokenizer exists, how to turn ids into text.</summary>
public sealed class ModelVocabulary
{
    private readonly Func<IReadOnlyList<int>, string>? _decode;

    public ModelVocabulary(IReadOnlyList<int> eosTokenIds, Func<IReadOnlyList<int>, string>? decode)
    {
        EosTokenIds = eosTokenIds;
        _decode = decode;
    }

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
