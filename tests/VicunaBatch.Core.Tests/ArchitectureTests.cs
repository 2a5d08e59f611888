using System.Text.RegularExpressions;
using VicunaBatch.Testing;

namespace VicunaBatch.Core.Tests;

/// <summary>
/// docs/architecture.md stays true: its layer table bounds every project's references, and its namespace table bounds
/// every Core file's namespace and the Core namespaces it uses, with no loop between them.
/// </summary>
public sealed partial class ArchitectureTests
{
    private static readonly string Root = Checkout.Root;
    private static readonly string Doc = File.ReadAllText(Path.Combine(Root, "docs", "architecture.md"));

    [Fact]
    public void Every_project_references_only_what_the_layer_table_allows()
    {
        var allowed = Table("Layers").ToDictionary(r => r[0].Trim('`'), r => Names(r[2]).Select(n => "VicunaBatch." + n).ToHashSet());
        var projects = Directory.GetFiles(Path.Combine(Root, "src"), "*.csproj", SearchOption.AllDirectories).Where(IsSource).ToList();

        Assert.Equal(projects.Select(Path.GetFileNameWithoutExtension).Order(), allowed.Keys.Order());
        foreach (var project in projects)
        {
            var name = Path.GetFileNameWithoutExtension(project)!;
            var references = ProjectReference().Matches(File.ReadAllText(project)).Select(m => m.Groups[1].Value);
            Assert.All(references, r => Assert.True(allowed[name].Contains(r), $"{name} references {r}; docs/architecture.md allows {string.Join(", ", allowed[name])}"));
        }
    }

    [Fact]
    public void Core_references_no_azure_sdk_and_no_onnx_runtime()
    {
        var packages = PackageReference().Matches(File.ReadAllText(Path.Combine(Root, "src", "VicunaBatch.Core", "VicunaBatch.Core.csproj")))
            .Select(m => m.Groups[1].Value).ToList();
        Assert.DoesNotContain(packages, p => p.StartsWith("Azure.", StringComparison.Ordinal) || p.Contains("OnnxRuntime", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_core_folder_is_its_namespace_and_uses_only_the_namespaces_before_it()
    {
        var mayUse = Table("Core's namespaces").ToDictionary(r => NamespaceOf(r[0]), r => Names(r[2]).ToHashSet());
        var core = Path.Combine(Root, "src", "VicunaBatch.Core");
        foreach (var file in Directory.GetFiles(core, "*.cs", SearchOption.AllDirectories).Where(IsSource))
        {
            var relative = Path.GetRelativePath(core, file);
            var folder = Path.GetDirectoryName(relative) is { Length: > 0 } f ? f : "";
            var source = File.ReadAllText(file);
            var declared = FileNamespace().Match(source).Groups[1].Value;
            Assert.True(declared == (folder.Length == 0 ? "VicunaBatch.Core" : $"VicunaBatch.Core.{folder}"), $"{relative} declares namespace {declared}");

            var used = CoreUsing().Matches(source).Select(m => m.Groups[1].Value)
                .Concat(QualifiedCoreName().Matches(Uncommented(source)).Select(m => m.Groups[1].Value))
                .Where(n => n != folder).Distinct();
            Assert.All(used, n => Assert.True(mayUse[folder].Contains(n) || mayUse[folder].Contains(Everything), $"{relative} uses VicunaBatch.Core.{n}; docs/architecture.md lets {NameOf(folder)} use {string.Join(", ", mayUse[folder])}"));
        }
    }

    [Fact]
    public void The_namespace_table_has_no_loop()
    {
        var mayUse = Table("Core's namespaces").ToDictionary(r => NamespaceOf(r[0]), r => Names(r[2]).ToList());
        var done = new HashSet<string>();
        // a namespace is placed once everything it may use is placed; a loop leaves some never placed
        while (mayUse.Keys.Except(done).FirstOrDefault(n => mayUse[n].All(u => done.Contains(u) || u == Everything)) is { } next) done.Add(next);
        Assert.Empty(mayUse.Keys.Except(done));
    }

    /// <summary>The rows of the first table under the heading that starts with <paramref name="heading"/>: cells trimmed, header and rule skipped.</summary>
    private static List<string[]> Table(string heading)
    {
        var section = Doc[Doc.IndexOf("## " + heading, StringComparison.Ordinal)..];
        return section.Split('\n').SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|')).Skip(2)
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray()).ToList();
    }

    /// <summary>The root namespace's "may use": the composition root may use every namespace.</summary>
    private const string Everything = "every namespace above";

    /// <summary>Project or namespace names in a cell ("Core, Inference"); "(no project)" is none.</summary>
    private static IEnumerable<string> Names(string cell) =>
        cell.StartsWith('(') ? [] : cell.Split(',').Select(n => n.Trim().Trim('`')).Where(n => n.Length > 0);

    private static string NamespaceOf(string cell) => cell.StartsWith("`VicunaBatch.Core`", StringComparison.Ordinal) ? "" : cell.Trim('`').Split('`')[0];

    private static string NameOf(string folder) => folder.Length == 0 ? "the root" : folder;

    /// <summary>Not a build's output (obj/, bin/: generated projects and sources).</summary>
    private static bool IsSource(string path) =>
        !path.Split(Path.DirectorySeparatorChar).Any(part => part is "obj" or "bin");

    private static string Uncommented(string source) => LineComment().Replace(source, "");

    [GeneratedRegex("""<ProjectReference Include="[^"]*/([A-Za-z.]+)\.csproj" """)]
    private static partial Regex ProjectReference();

    [GeneratedRegex("""<PackageReference Include="([^"]+)" """)]
    private static partial Regex PackageReference();

    [GeneratedRegex(@"^namespace ([\w.]+);", RegexOptions.Multiline)]
    private static partial Regex FileNamespace();

    [GeneratedRegex(@"^using VicunaBatch\.Core\.(\w+);", RegexOptions.Multiline)]
    private static partial Regex CoreUsing();

    [GeneratedRegex(@"(?<![\w.])(?:VicunaBatch\.)?Core\.(\w+)\.[A-Z]")]
    private static partial Regex QualifiedCoreName();

    [GeneratedRegex(@"//.*")]
    private static partial Regex LineComment();
}
