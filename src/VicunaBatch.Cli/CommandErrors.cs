using System.CommandLine;
using VicunaBatch.Core;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Cli;

/// <summary>Turns the errors a user can cause (bad paths, bad packages, bad input) into one clear line and exit code 2.</summary>
internal static class CommandErrors
{
    public static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        try
        {
            return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ModelPackageException or UsageException or FileNotFoundException or DirectoryNotFoundException
            or InvalidDataException or NotSupportedException or ArgumentOutOfRangeException or InferenceException
            or PipelineDefinitionException)
        {
            await Console.Error.WriteLineAsync($"vicuna-batch: {e.Message}");
            return 2;
        }
    }
}

/// <summary>A command line that parses but cannot be carried out (conflicting options, missing tokenizer for text).</summary>
internal sealed class UsageException(string message) : Exception(message);
