namespace VicunaBatch.Inference.Package;

/// <summary>
/// A model package folder: <c>genai_config.json</c>, the decoder graph (+ external data) and an optional
/// SentencePiece <c>tokenizer.model</c>. The graph's inputs and outputs: docs/model-export.md.
/// </summary>
public sealed class ModelPackage
{
    public const string ConfigFileName = "genai_config.json";
    public const string TokenizerFileName = "tokenizer.model";

    private ModelPackage(string directory, GenAiConfig config)
    {
        Directory = directory;
        Config = config;
    }

    public string Directory { get; }

    public GenAiConfig Config { get; }

    public string Name => NameOf(Directory);

    /// <summary>The name a package at <paramref name="directory"/> is served under when it is given none: its folder's.</summary>
    public static string NameOf(string directory) => Path.GetFileName(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar));

    public string DecoderPath => Path.Combine(Directory, Config.Model.Decoder.Filename);

    /// <summary>The tokenizer file, or null when the package ships none (token ids only).</summary>
    public string? TokenizerPath
    {
        get
        {
            var path = Path.Combine(Directory, TokenizerFileName);
            return File.Exists(path) ? path : null;
        }
    }

    public static ModelPackage Load(string directory)
    {
        var full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full))
        {
            throw new ModelPackageException($"model package folder not found: {full}");
        }
        var configPath = Path.Combine(full, ConfigFileName);
        if (!File.Exists(configPath))
        {
            throw new ModelPackageException($"{full} is not a model package: {ConfigFileName} is missing");
        }
        var config = GenAiConfig.Parse(File.ReadAllText(configPath), configPath);
        var package = new ModelPackage(full, config);
        if (!File.Exists(package.DecoderPath))
        {
            throw new ModelPackageException($"decoder graph not found: {package.DecoderPath}");
        }
        return package;
    }
}
