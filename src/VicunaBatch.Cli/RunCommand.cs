using System.CommandLine;

namespace VicunaBatch.Cli;

internal static class RunCommand
{
    public static Command Create() => new("run", "Run a bulk prompt file to completion (not yet available).");
}
