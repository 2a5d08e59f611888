using System.Text.RegularExpressions;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Jobs;

/// <summary>
/// The models a deployment serves, by the names that input lines (<c>body.model</c>), batches and outputs use. The first
/// is the default: the model of a batch whose lines name none (simple lines, <c>.txt</c> files).
/// </summary>
public sealed partial class ServedModels
{
    public ServedModels(IEnumerable<string> names)
    {
        Names = [.. names];
        if (Problem(Names) is { } problem) throw new ArgumentException(problem, nameof(names));
    }

    /// <summary>
    /// Why <paramref name="names"/> cannot be a deployment's served models (none; a name against <see cref="NameRule"/>;
    /// two names that would share a queue), or null: the one check of every host's model settings, which each says in
    /// its own terms (<c>--model</c>, <c>Models__Served</c>).
    /// </summary>
    public static string? Problem(IReadOnlyList<string> names)
    {
        if (names.Count == 0) return "at least one model must be served";
        if (names.FirstOrDefault(n => !IsValidName(n)) is { } bad) return $"model name \"{bad}\" {NameRule}";
        // queue names ignore case (Service Bus), so two names that differ only in case would share a queue
        if (names.GroupBy(n => n, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } twice)
            return $"model \"{twice.Key}\" is named twice (names differing only in case count as one)";
        return null;
    }

    /// <summary>Every served model, the default first.</summary>
    public IReadOnlyList<string> Names { get; }

    public string Default => Names[0];

    public bool Serves(string name) => Names.Contains(name, StringComparer.Ordinal);

    /// <summary>What a model name must be, said to whoever gives one.</summary>
    public const string NameRule = "must be 1-64 letters, digits, '.', '_' or '-', starting and ending with a letter or digit";

    /// <summary>What a model name may be: it names a queue (on Azure, a Service Bus queue, whose names end alphanumeric).</summary>
    public static bool IsValidName(string name) => ModelName().IsMatch(name);

    /// <summary>
    /// The batch's model from the distinct models its lines name (<paramref name="named"/>, each with its first line):
    /// none named, the default; one named and served, that one; else a <c>model_not_found</c> error, as OpenAI's batch
    /// fails for a model it does not have (a batch has one model).
    /// </summary>
    public (string? Model, JobError? Error) Resolve(IReadOnlyList<NamedModel> named)
    {
        if (named.Count == 0) return (Default, null);
        var first = named[0];
        if (!Serves(first.Name)) return (null, NotFound(first, $"the model '{first.Name}' is not served here (served: {string.Join(", ", Names)})"));
        if (named.Count > 1)
        {
            var other = named[1];
            return (null, NotFound(other, $"line {other.Line} names the model '{other.Name}', but the batch's model is '{first.Name}' " +
                $"(line {first.Line}): a batch has one model"));
        }
        return (first.Name, null);
    }

    private static JobError NotFound(NamedModel at, string message) => new("model_not_found", message, "body.model", at.Line);

    [GeneratedRegex("^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")]
    private static partial Regex ModelName();
}
