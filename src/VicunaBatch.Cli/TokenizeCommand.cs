using System.CommandLine;
using System.Text;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Cli;

/// <summary><c>vicuna-batch tokenize --tokenizer PATH</c>: one JSON array of SentencePiece ids (no BOS/EOS) per stdin line.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizerOption = new Option<FileInfo>("--tokenizer")
        {
            Description = "Path of the SentencePiece tokenizer.model (BPE).",
            Required = true,
        };
        var command = new Command("tokenize", "Print the token ids of each UTF-8 line of stdin as a JSON array, without BOS/EOS.")
        {
            tokenizerOption,
        };
        command.SetAction(async (ParseResult parseResult, CancellationToken cancellationToken) =>
        {
            var file = parseResult.GetValue(tokenizerOption)!;
            if (!file.Exists)
            {
                throw new UsageException($"--tokenizer {file.FullName}: not found");
            }
            // an unreadable model is an error line with the program's prefix and exit code 2, as for every command
            using var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
            return await RunAsync(file.FullName, input, Console.Out, cancellationToken);
        });
        return command;
    }

    /// <summary>Writes "[id, id, ...]\n" for every line of <paramref name="input"/>; returns the exit code.</summary>
    public static async Task<int> RunAsync(string tokenizerPath, TextReader input, TextWriter output, CancellationToken cancellationToken = default)
    {
        var tokenizer = TextTokenizer.Load(tokenizerPath);
        while (await input.ReadLineAsync(cancellationToken) is { } line)
        {
            await output.WriteAsync(("[" + string.Join(", ", tokenizer.Encode(line)) + "]\n").AsMemory(), cancellationToken);
        }
        await output.FlushAsync(cancellationToken);
        return 0;
    }
}
