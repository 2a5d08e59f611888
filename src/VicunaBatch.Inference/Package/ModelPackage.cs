namespace VicunaBatch.Inference.Package;

/// <summary>
/// A model package: <c>genai_config.json</c>, the decoder graph (+ external data) and an optional SentencePiece
/// <c>tokenizer.model</c>, in a folder or in memory (<see cref="PackageFiles"/>). The graph's inputs and outputs:
/// docs/model-export.md.
/// </summary>
public sealed class ModelPackage
{
    public const string ConfigFileName = "genai_config.json";
    public const string TokenizerFileName = "tokenizer.model";

    /// <summary>The Hugging Face tokenizer ONNX Runtime GenAI's model builder writes instead; the engine does not read it.</summary>
    public const string HfTokenizerFileName = "tokenizer.json";

    private ModelPackage(PackageFiles files, GenAiConfig config)
    {
        Files = files;
        Config = config;
    }

    public PackageFiles Files { get; }

    /// <summary>The folder, or the blob folder the package was read from into memory.</summary>
    public string Location => Files.Location;

    public GenAiConfig Config { get; }

    public string Name => Files.Name;

    /// <summary>The name a package at <paramref name="directory"/> is served under when it is given none: its folder's.</summary>
    public static string NameOf(string directory) => Path.GetFileName(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar));

    /// <summary>The decoder graph's file name in the package.</summary>
    public string DecoderFileName => Config.Model.Decoder.Filename;

    /// <summary>The decoder graph as error messages name it (a path, or the blob it was read from).</summary>
    public string DecoderLocation => Files.Describe(DecoderFileName);

    /// <summary>The tokenizer file as error messages name it, or null when the package ships none (token ids only).</summary>
    public string? TokenizerLocation => Files.Contains(TokenizerFileName) ? Files.Describe(TokenizerFileName) : null;

    /// <summary>
    /// What commands that need text say of a package without <see cref="TokenizerFileName"/>: "has no tokenizer.model", and why
    /// a Hugging Face <c>tokenizer.json</c> beside it (ONNX Runtime GenAI's model builder writes that one) does not serve.
    /// </summary>
    public string NoTokenizer => Files.Contains(HfTokenizerFileName)
        ? $"has no {TokenizerFileName} (its {HfTokenizerFileName}, a Hugging Face tokenizer, is not read: put the model's SentencePiece {TokenizerFileName} beside it)"
        : $"has no {TokenizerFileName}";

    /// <summary>The package in the folder <paramref name="directory"/>.</summary>
    public static ModelPackage Load(string directory) => Open(PackageFiles.InDirectory(directory));

    /// <summary>The package whose files are <paramref name="files"/>; they must hold the config and the decoder graph.</summary>
    public static ModelPackage Open(PackageFiles files)
    {
        var package = new ModelPackage(files, ReadConfig(files));
        if (!files.Contains(package.DecoderFileName))
        {
            throw new ModelPackageException($"decoder graph not found: {package.DecoderLocation}");
        }
        return package;
    }

    /// <summary>The package's <c>genai_config.json</c> (a host that only counts or splits text needs no graph).</summary>
    public static GenAiConfig ReadConfig(PackageFiles files)
    {
        if (!files.Contains(ConfigFileName))
        {
            throw new ModelPackageException($"{files.Location} is not a model package: {ConfigFileName} is missing");
        }
        using var text = new StreamReader(new MemoryStream(files.ReadAllBytes(ConfigFileName))); // as File.ReadAllText: a BOM is dropped
        return GenAiConfig.Parse(text.ReadToEnd(), files.Describe(ConfigFileName));
    }
}
