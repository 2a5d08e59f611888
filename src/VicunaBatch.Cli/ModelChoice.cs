using VicunaBatch.Core.Jobs;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Cli;

/// <summary>
/// A model a command serves, <c>--model [NAME=]DIR</c>: the package folder, and the name input lines (<c>body.model</c>),
/// batches and outputs know it by; without a name, the package's own (its folder's name).
/// </summary>
public sealed record ModelChoice(string Name, string Path)
{
    /// <summary>The embedded tiny model, by its package's name.</summary>
    public static ModelChoice Default => Of(ModelOptions.DefaultModelPath);

    /// <summary>The package at <paramref name="path"/>, named as its folder is.</summary>
    public static ModelChoice Of(string path) => new(ModelPackage.NameOf(path), System.IO.Path.GetFullPath(path));

    /// <summary><c>NAME=DIR</c> or <c>DIR</c> (a folder that exists is always a DIR, whatever it holds).</summary>
    public static ModelChoice Parse(string value)
    {
        int equals = value.IndexOf('=');
        if (equals <= 0 || Directory.Exists(value)) return Named(Of(value));
        var name = value[..equals];
        if (!ServedModels.IsValidName(name))
            throw new UsageException($"--model {value}: the name '{name}' {ServedModels.NameRule}");
        return Of(value[(equals + 1)..]) with { Name = name };
    }

    /// <summary>A package's own name must make a model name too; else it needs one (<c>--model NAME=DIR</c>).</summary>
    private static ModelChoice Named(ModelChoice choice) => ServedModels.IsValidName(choice.Name) ? choice
        : throw new UsageException($"--model {choice.Path}: its folder's name '{choice.Name}' is no model name (letters, digits, '.', '_', '-'); name it: --model NAME={choice.Path}");
}
