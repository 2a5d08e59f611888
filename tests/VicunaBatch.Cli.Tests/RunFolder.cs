using System.Text.Json;

namespace VicunaBatch.Cli.Tests;

/// <summary>A temporary folder for one test's input and <c>--out</c>, and readers for what a run leaves in it.</summary>
internal sealed class RunFolder : IDisposable
{
    public RunFolder()
    {
        Root = Path.Combine(Path.GetTempPath(), "vicuna-run-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string Out => Path.Combine(Root, "out");

    public string CheckpointsFolder => Path.Combine(Out, ".state", "checkpoints");

    public string OutputPath => Path.Combine(Out, "output.jsonl");

    public string ErrorsPath => Path.Combine(Out, "errors.jsonl");

    public string JobPath => Path.Combine(Out, "job.json");

    public string WriteInput(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(Root, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>One JSON document per non-empty line.</summary>
    public static List<JsonElement> ReadJsonLines(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>custom_ids of the complete outcomes in the run's checkpoint files (a torn last line, left by a kill, is not counted).</summary>
    public List<string> ReadCheckpointedIds() => ReadCheckpointedIds(CheckpointsFolder);

    /// <summary>As <see cref="ReadCheckpointedIds()"/>, for the checkpoint files below <paramref name="checkpointsFolder"/>.</summary>
    public static List<string> ReadCheckpointedIds(string checkpointsFolder)
    {
        var ids = new List<string>();
        if (!Directory.Exists(checkpointsFolder)) return ids;
        foreach (var file in Directory.EnumerateFiles(checkpointsFolder, "*.jsonl", SearchOption.AllDirectories))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                try
                {
                    if (line.Length > 0) ids.Add(JsonDocument.Parse(line).RootElement.GetProperty("custom_id").GetString()!);
                }
                catch (JsonException)
                {
                    // torn line
                }
            }
        }
        return ids;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // a killed child may still be releasing files; the OS temp cleaner gets the rest
        }
    }
}
