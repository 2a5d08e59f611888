using System.CommandLine;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Pipelines;
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
            await Console.Error.WriteLineAsync($"vicuna-batch: {Message(e)}");
            return 2;
        }
        catch (ApiClientException e)
        {
            // the batch API refused (its own message) or could not be reached: not a usage error of this command line
            await Console.Error.WriteLineAsync($"vicuna-batch: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// The flag of each setting a command line sets and its validation names: the engine's (<see cref="ModelOptions.FlagOf"/>)
    /// and the request defaults and shard counts of <c>run</c>, <c>generate</c>, <c>bench</c>, <c>pipeline run</c> and
    /// <c>serve</c>, and <c>serve</c>'s port.
    /// </summary>
    private static readonly Dictionary<string, string> FlagOf = new(ModelOptions.FlagOf)
    {
        [nameof(Execution.RequestDefaults.MaxTokens)] = "--max-tokens",
        [nameof(Execution.RequestDefaults.Temperature)] = "--temperature",
        [nameof(Execution.RequestDefaults.TopP)] = "--top-p",
        [nameof(Execution.ShardPumpOptions.MaxConcurrentShards)] = "--workers",
        [nameof(InputOptions.RequestsPerShard)] = "--requests-per-shard",
        [nameof(InputOptions.MaxLineBytes)] = "--max-line-bytes",
        [nameof(ServeSettings.Port)] = "--port",
    };

    /// <summary>An option out of range reads as its flag and value (<c>--cuda-graphs on: CUDA graphs need the CUDA
    /// device</c>), not as the property and the exception's two lines.</summary>
    internal static string Message(Exception e) =>
        e is ArgumentOutOfRangeException { ParamName: { } name } outOfRange && FlagOf.TryGetValue(name, out var flag)
            ? Core.Formats.OutOfRangeText.Describe(flag, outOfRange)
            : e.Message;
}

/// <summary>A command line that parses but cannot be carried out (conflicting options, missing tokenizer for text).</summary>
internal sealed class UsageException(string message) : Exception(message);
