using System.Text;

namespace VicunaBatch.Core.Pipelines;

/// <summary>A prompt with <c>{text}</c>, <c>{title}</c> and <c>{path}</c> placeholders; <c>{{</c> and <c>}}</c> are literal braces.</summary>
public sealed class PromptTemplate
{
    public static readonly IReadOnlyList<string> Placeholders = ["text", "title", "path"];

    // literal text and placeholder names, alternating: [literal, name, literal, name, ..., literal]
    private readonly IReadOnlyList<string> _parts;

    private PromptTemplate(string source, IReadOnlyList<string> parts) => (Source, _parts) = (source, parts);

    public string Source { get; }

    /// <exception cref="PipelineDefinitionException">An unknown placeholder, an unclosed brace, or no <c>{text}</c>.</exception>
    public static PromptTemplate Parse(string template, string field = "prompt")
    {
        var parts = new List<string>();
        var literal = new StringBuilder();
        for (int i = 0; i < template.Length; i++)
        {
            char c = template[i];
            if ((c == '{' || c == '}') && i + 1 < template.Length && template[i + 1] == c)
            {
                literal.Append(c);
                i++;
            }
            else if (c == '{')
            {
                int close = template.IndexOf('}', i + 1);
                if (close < 0) throw new PipelineDefinitionException(field, $"unclosed '{{' at character {i + 1} (write {{{{ for a literal brace)");
                var name = template[(i + 1)..close];
                if (!Placeholders.Contains(name))
                    throw new PipelineDefinitionException(field, $"unknown placeholder {{{name}}} (known: {{text}}, {{title}}, {{path}})");
                parts.Add(literal.ToString());
                parts.Add(name);
                literal.Clear();
                i = close;
            }
            else if (c == '}') throw new PipelineDefinitionException(field, $"unmatched '}}' at character {i + 1} (write }}}} for a literal brace)");
            else literal.Append(c);
        }
        parts.Add(literal.ToString());
        if (!parts.Where((_, i) => i % 2 == 1).Contains("text"))
            throw new PipelineDefinitionException(field, "must contain {text}, where the document (or the summaries to combine) goes");
        return new PromptTemplate(template, parts);
    }

    public string Render(string text, string title, string path)
    {
        var result = new StringBuilder();
        for (int i = 0; i < _parts.Count; i++)
        {
            result.Append(i % 2 == 0 ? _parts[i] : _parts[i] switch
            {
                "text" => text,
                "title" => title,
                _ => path,
            });
        }
        return result.ToString();
    }
}
