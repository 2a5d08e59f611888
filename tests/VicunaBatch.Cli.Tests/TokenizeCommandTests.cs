using System.CommandLine;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

public sealed class TokenizeCommandTests
{
    [Fact]
    public async Task RunAsync_threeLines_writesOneJsonArrayPerLine()
    {
        var input = new StringReader("Hello world\n\n👍 1234\n");
        var output = new StringWriter();

        int exitCode = await TokenizeCommand.RunAsync(LlamaTokenizerPath(), input, output);

        Assert.Equal(0, exitCode);
        // Ids from python sentencepiece's sp.encode of each line with the LLaMA tokenizer.
        Assert.Equal("[15043, 3186]\n[]\n[29871, 243, 162, 148, 144, 29871, 29896, 29906, 29941, 29946]\n", output.ToString());
    }

    [Fact]
    public void Create_withoutTokenizerOption_reportsRequiredOptionError()
    {
        var root = new RootCommand { TokenizeCommand.Create() };

        var result = root.Parse(["tokenize"]);

        Assert.Equal(["Option '--tokenizer' is required."], result.Errors.Select(e => e.Message));
    }

    [Fact]
    public async Task A_missing_tokenizer_is_a_usage_error_like_every_command_s()
    {
        var missing = Path.Combine(Path.GetTempPath(), "vicunabatch-no-such-" + Guid.NewGuid().ToString("N"), "tokenizer.model");

        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(Path.GetTempPath(), TimeSpan.FromSeconds(60), "tokenize", "--tokenizer", missing);

        Assert.Equal(2, exitCode);
        Assert.Equal("", stdout);
        Assert.Equal($"vicuna-batch: --tokenizer {missing}: not found", stderr.Trim());
    }

    private static string LlamaTokenizerPath()
    {
        string path = Path.GetFullPath(Path.Combine(Checkout.Shared, "models", "llama-tokenizer.model"));
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"LLaMA tokenizer not found at '{path}'; set VICUNA_SHARED to the shared folder.");
    }
}
