namespace VicunaBatch.Core.Ports;

/// <summary>The model's tokenizer as pipelines see it (the host adapts the SentencePiece one).</summary>
public interface IDocumentTokenizer
{
    IReadOnlyList<int> Encode(string text);

    string Decode(IReadOnlyList<int> ids);
}
