using System.Globalization;
using System.Text.Json.Nodes;
using GenAiPeer;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Package;
using VicunaBatch.Inference.Text;

// GenAiPeer generator|engine PACKAGE WORKLOAD [--batch-size N] [--limit N] [--threads N] [--max-length N]
// --threads: the decoder session's intra_op_num_threads, overlaid on the package's config (default: one per core, as
// `bench --threads 0`; GenAI's own default runs one thread here). --max-length: search.max_length overlaid, the KV
// length the engine reserves per request (as `bench --max-sequence-length`; default the package's).
// Every request makes exactly its max_tokens (EOS masked by min_length / min generated tokens), as `bench` does by
// default; prompts are encoded as `bench` encodes them. Prints one JSON line.
if (args.Length < 3 || args[0] is not ("generator" or "engine"))
{
    Console.Error.WriteLine("usage: GenAiPeer generator|engine PACKAGE WORKLOAD [--batch-size N] [--limit N] [--threads N] [--max-length N]");
    return 2;
}
var (mode, package, workload) = (args[0], args[1], args[2]);
int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var i and >= 0 ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
var batchSize = Option("--batch-size", 16);
var limit = Option("--limit", 0);
var threads = Option("--threads", Environment.ProcessorCount);
var maxLength = Option("--max-length", 0);
var overlay = $"\"model\": {{\"decoder\": {{\"session_options\": {{\"intra_op_num_threads\": {threads}}}}}}}"
    + (maxLength > 0 ? $", \"search\": {{\"max_length\": {maxLength}}}" : "");

var tokenizer = LoadedModel.TokenizerOf(ModelPackage.Load(package))
    ?? throw new InvalidOperationException($"{package} has no tokenizer.model");
var requests = new List<(int[] Prompt, int MaxTokens)>();
foreach (var line in File.ReadLines(workload).Where(l => !string.IsNullOrWhiteSpace(l)))
{
    var node = JsonNode.Parse(line)!.AsObject();
    requests.Add((PromptEncoder.EncodeCompletion(tokenizer, node["prompt"]!.GetValue<string>()).ToArray(), node["max_tokens"]?.GetValue<int>() ?? 128));
    if (limit > 0 && requests.Count == limit) break;
}

// seconds: from the first request given to the last token, the model loaded before (as `bench` reports its engine)
var generated = mode == "generator"
    ? StaticBatches.Run(package, "{" + overlay + "}", requests, batchSize)
    : NativeEngine.Run(package, "{" + overlay + ", \"engine\": {\"static_batching\": {\"max_batch_size\": " + batchSize + "}}}", requests);
var seconds = generated.Seconds;
var wanted = requests.Sum(r => r.MaxTokens);
if (generated.Useful != wanted)
{
    Console.Error.WriteLine($"generated {generated.Useful} useful tokens, the workload asks for {wanted}");
    return 1;
}
Console.WriteLine(new JsonObject
{
    ["peer"] = mode == "generator" ? "genai-generator" : "genai-engine",
    ["batch_size"] = batchSize,
    ["threads"] = threads,
    ["requests"] = requests.Count,
    ["output_tokens"] = generated.Useful,
    ["computed_tokens"] = generated.Computed,
    ["seconds"] = Math.Round(seconds, 3),
    ["output_tokens_per_s"] = Math.Round(generated.Useful / seconds, 1),
}.ToJsonString());
return 0;
