using VicunaBatch.Core.Ports;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Execution;

/// <summary>The model's SentencePiece tokenizer as pipelines see it when they split documents.</summary>
public sealed class TokenizerDocuments(TextTokenizer tokenizer) : IDocumentTokenizer
{
    public IReadOnlyList<int> Encode(string text) => tokenizer.Encode(text);

    public string Decode(IReadOnlyList<int> ids) => tokenizer.Decode(ids);
}
