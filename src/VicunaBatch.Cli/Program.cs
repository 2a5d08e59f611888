using System.CommandLine;
using VicunaBatch.Cli;

var root = new RootCommand("vicuna-batch: batch LLM inference with continuous batching on ONNX Runtime.")
{
    RunCommand.Create(),
    PipelineCommand.Create(),
    ServeCommand.Create(),
    GenerateCommand.Create(),
    BenchCommand.Create(),
    TokenizeCommand.Create(),
    CheckCommand.Create(),
    VicunaBatch.Cli.Eval.EvalCommand.Create(),
};
foreach (var client in ClientCommands.Create()) root.Subcommands.Add(client);
return await CommandErrors.InvokeAsync(root, args);
