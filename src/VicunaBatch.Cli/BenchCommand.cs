using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Text;

namespace VicunaBatch.Cli;

/// <summary>
/// <c>vicuna-batch bench</c>: an offline workload (every request present at t=0) through one engine, or one request
/// at a time with <c>--sequential</c>; on several GPUs (<c>--gpus</c>), split over their engines (<see cref="BenchEngines"/>). EOS is ignored by default so every request makes exactly its
/// <c>max_tokens</c> and runs compare like for like (random-weight models emit EOS at random).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var modelOptions = new ModelOptions();
        var workload = new Option<FileInfo>("--workload")
        {
            Description = "JSONL of {\"custom_id\", \"prompt\", \"max_tokens\"} (../shared/bench/*.jsonl); \"temperature\", \"top_p\" and \"seed\" where a line samples.",
            Required = true,
        };
        var sequential = new Option<bool>("--sequential") { Description = "Run the requests one at a time (the baseline)." };
        var limit = new Option<int>("--limit") { Description = "Only the first N requests; 0 = all.", DefaultValueFactory = _ => 0 };
        var respectEos = new Option<bool>("--respect-eos") { Description = "Stop requests at EOS instead of generating max_tokens." };
        var json = new Option<bool>("--json") { Description = "Print the figures as one JSON object." };
        var temperature = new Option<float>("--temperature") { Description = "Sample every line without its own temperature at this one; 0 = greedy.", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { Description = "top_p of lines without their own.", DefaultValueFactory = _ => 1f };
        var topLogprobs = new Option<int?>("--top-logprobs")
        {
            Description = $"Every request asks for each token's log probability and this many alternatives (0-{TokenLogprobs.MaxTop}); unset: none.",
        };
        var choices = new Option<int>("--choices")
        {
            Description = "n: every line asks for this many choices, which share its prompt's prefill (one result each).",
            DefaultValueFactory = _ => 1,
        };
        var separateChoices = new Option<bool>("--separate-choices")
        {
            Description = "Run each of the --choices as a request of its own, computing the prompt each time (the baseline for --choices).",
        };
        var copyBandwidth = new Option<double>("--copy-bandwidth")
        {
            Description = "The device's measured copy bandwidth in GB/s (bytes read + written): the decode steps' bytes by the byte model are then given as a fraction of it (the memory roofline).",
        };
        var matmulRate = new Option<double>("--matmul-tflops")
        {
            Description = "The device's measured matmul rate in TFLOP/s at the model's precision: the steps with prompt chunks are then given as a fraction of it.",
        };
        foreach (var (peak, unit) in new[] { (copyBandwidth, "GB/s"), (matmulRate, "TFLOP/s") })
        {
            peak.Validators.Add(result =>
            {
                var value = result.GetValueOrDefault<double>();
                if (!double.IsFinite(value) || value <= 0)
                {
                    result.AddError($"{peak.Name} {value.ToString(CultureInfo.InvariantCulture)}: must be the device's measured rate in {unit}, a number > 0");
                }
            });
        }
        var command = new Command("bench", "Measure throughput and latency of the engine on a workload.")
        {
            workload, sequential, limit, respectEos, json, temperature, topP, topLogprobs, choices, separateChoices, copyBandwidth, matmulRate,
        };
        modelOptions.AddTo(command, engines: true);
        command.SetAction((ParseResult r) =>
        {
            if (modelOptions.EachEngine(r) is { Count: > 1 } engines)
                return BenchEngines.Run(r, modelOptions, engines, workload, limit, respectEos, temperature, topP, topLogprobs, choices, separateChoices, sequential, json,
                    new DevicePeaks(r.GetValue(copyBandwidth), r.GetValue(matmulRate)));
            using var model = modelOptions.Open(r);
            var requests = WithChoices(ReadWorkload(model, r.GetValue(workload)!, r.GetValue(limit), !r.GetValue(respectEos),
                r.GetValue(temperature), r.GetValue(topP), r.GetValue(topLogprobs)), r.GetValue(choices), r.GetValue(separateChoices));
            var report = Run(model.Engine, requests, r.GetValue(sequential)) with
            {
                Peaks = new DevicePeaks(r.GetValue(copyBandwidth), r.GetValue(matmulRate)),
            };
            Console.Out.WriteLine(r.GetValue(json) ? report.ToJson() : report.ToTable(model.Name, r.GetValue(sequential)));
            return report.NumErrors == 0 ? 0 : 1;
        });
        return command;
    }

    /// <summary>The workload's requests; a line without its own <c>temperature</c> / <c>top_p</c> takes these, one without a
    /// <c>seed</c> its line number (runs compare like for like); each asks for <paramref name="topLogprobs"/> when set.</summary>
    internal static List<GenerationRequest> ReadWorkload(LoadedModel model, FileInfo file, int limit, bool ignoreEos,
        float temperature = 0f, float topP = 1f, int? topLogprobs = null)
    {
        var tokenizer = model.Tokenizer
            ?? throw new UsageException($"{model.Package.Location} {model.Package.NoTokenizer}; bench workloads are text");
        var requests = new List<GenerationRequest>();
        foreach (var line in File.ReadLines(file.FullName))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            var node = JsonNode.Parse(line)!.AsObject();
            var prompt = node["prompt"]?.GetValue<string>() ?? throw new InvalidDataException($"{file.Name}: a line has no \"prompt\"");
            var lineTemperature = node["temperature"]?.GetValue<float>() ?? temperature;
            var sampling = lineTemperature > 0
                ? new SamplingParams(lineTemperature, 0, node["top_p"]?.GetValue<float>() ?? topP, node["seed"]?.GetValue<ulong>() ?? (ulong)(requests.Count + 1))
                : null;
            requests.Add(new GenerationRequest(
                node["custom_id"]?.GetValue<string>() ?? $"line-{requests.Count + 1}",
                PromptEncoder.EncodeCompletion(tokenizer, prompt),
                node["max_tokens"]?.GetValue<int>() ?? 128,
                sampling,
                IgnoreEos: ignoreEos,
                TopLogprobs: topLogprobs));
            if (limit > 0 && requests.Count == limit)
            {
                break;
            }
        }
        return requests;
    }

    /// <summary>
    /// Each request with <paramref name="numChoices"/> choices: as one request of that many (they share the prompt's
    /// prefill), or <paramref name="separate"/>ly as that many requests, choice c with its seed moved as the engine moves it.
    /// </summary>
    internal static List<GenerationRequest> WithChoices(List<GenerationRequest> requests, int numChoices, bool separate)
    {
        if (numChoices is < 1 or > GenerationRequest.MaxChoices)
        {
            throw new UsageException($"--choices must be 1 to {GenerationRequest.MaxChoices}, got {numChoices}");
        }
        if (numChoices == 1) return requests;
        return separate
            ? [.. requests.SelectMany(request => Enumerable.Range(0, numChoices).Select(choice => request with
            {
                Id = $"{request.Id}#{choice}",
                Sampling = (request.Sampling ?? SamplingParams.Greedy).ForChoice(choice),
            }))]
            : [.. requests.Select(request => request with { NumChoices = numChoices })];
    }

    /// <param name="report">Requests done and output tokens as they move (an engine of several); null: a progress line of its own.</param>
    internal static BenchReport Run(InferenceEngine engine, IReadOnlyList<GenerationRequest> requests, bool sequential, Action<int, long>? report = null)
    {
        var results = new List<GenerationResult>(requests.Count);
        var clock = Stopwatch.StartNew();
        var progress = report is null ? new ProgressLine(requests.Count) : null;
        report ??= (done, tokens) => progress!.Report(done, tokens);
        if (sequential)
        {
            foreach (var request in requests)
            {
                engine.Submit(request);
                Drain(engine, results, report);
            }
        }
        else
        {
            foreach (var request in requests)
            {
                engine.Submit(request);
            }
            Drain(engine, results, report);
        }
        progress?.Clear();
        var blocks = engine.KvUsage is { Unit: KvUnit.Block } kv ? new KvBlocks(kv.NumUnits, kv.UnitTokens) : null;
        return new BenchReport(results, clock.Elapsed, engine.Statistics, engine.NumSlots, blocks)
        {
            CudaGraphs = engine.ReplaysCudaGraphs,
            PrefixCache = blocks is not null && engine.Options.PrefixCache,
            Cost = engine.Cost,
        };
    }

    private static void Drain(InferenceEngine engine, List<GenerationResult> results, Action<int, long> report)
    {
        var tokens = results.Sum(x => (long)x.CompletionTokens);
        while (engine.HasWork)
        {
            foreach (var result in engine.Step())
            {
                results.Add(result);
                tokens += result.CompletionTokens;
            }
            report(results.Count, tokens);
        }
    }

    internal sealed record BenchReport(IReadOnlyList<GenerationResult> Results, TimeSpan Elapsed, EngineStatistics Statistics, int NumSlots,
        KvBlocks? Blocks = null)
    {
        /// <summary>Decode steps replayed as CUDA graphs.</summary>
        public bool CudaGraphs { get; init; }

        /// <summary>The engine's byte and FLOP model of a step, when it counts one.</summary>
        public StepCost? Cost { get; init; }

        /// <summary>The device's measured peaks, given on the command line (0: not given).</summary>
        public DevicePeaks Peaks { get; init; } = new(0, 0);

        /// <summary>Mean bytes a decode-only step must move by <see cref="Cost"/>.</summary>
        public double DecodeStepBytes => Statistics.NumDecodeOnlySteps == 0 ? 0 : Statistics.DecodeOnlyBytes / Statistics.NumDecodeOnlySteps;

        public double DecodeStepMs => Statistics.NumDecodeOnlySteps == 0 ? 0 : Statistics.DecodeOnlyTime.TotalMilliseconds / Statistics.NumDecodeOnlySteps;

        /// <summary>Paged KV with the prefix cache on (<see cref="EngineOptions.PrefixCache"/>).</summary>
        public bool PrefixCache { get; init; }

        public int NumErrors => Results.Count(r => r.FinishReason == FinishReason.Error);

        public long OutputTokens => Results.Sum(r => (long)r.CompletionTokens);

        /// <summary>The requests' prompt tokens, each prompt once (a request's n choices share it; --separate-choices are requests of their own).</summary>
        public long PromptTokens => Results.Where(r => r.Choice == 0).Sum(r => (long)r.PromptTokens);

        /// <summary>Prefill tokens computed per prompt token: above 1 where preemption recomputed prompts, below where the prefix cache or a fork gave them.</summary>
        public double PrefillPerPromptToken => PromptTokens == 0 ? 0 : Statistics.NumPrefillTokens / (double)PromptTokens;

        public double OutputTokensPerSecond => OutputTokens / Elapsed.TotalSeconds;

        public double RequestsPerSecond => Results.Count / Elapsed.TotalSeconds;

        /// <summary>Mean engine step time; with --sequential and short prompts, close to the batch-1 time per output token.</summary>
        public double MeanStepMs => Statistics.NumSteps == 0 ? 0 : Statistics.StepTime.TotalMilliseconds / Statistics.NumSteps;

        /// <summary>Mean logits rows brought to the host per step (0 when the graphs pick every token and take every log probability).</summary>
        public double LogitRowsPerStep => Statistics.NumSteps == 0 ? 0 : (double)Statistics.NumLogitRowsRead / Statistics.NumSteps;

        public double TtftPercentileMs(double p)
        {
            var sorted = Results.Select(r => r.TimeToFirstToken.TotalMilliseconds).Order().ToArray();
            return sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];
        }

        public string ToJson()
        {
            var json = Figures();
            if (Blocks is { } blocks)
            {
                json["kv_blocks"] = blocks.NumBlocks;
                json["block_size"] = blocks.BlockSize;
                json["preemptions"] = Statistics.NumPreemptions;
                json["swap_outs"] = Statistics.NumSwapOuts;
                json["swapped_out_blocks"] = Statistics.NumSwappedOutBlocks;
                json["swap_ms"] = Math.Round(Statistics.SwapTime.TotalMilliseconds, 1);
                json["prefix_cache"] = PrefixCache;
                json["cached_prompt_tokens"] = Statistics.NumCachedPromptTokens;
                json["evicted_blocks"] = Statistics.NumEvictedBlocks;
            }
            if (CudaGraphs) json["cuda_graphs"] = true;
            if (Cost is { } cost)
            {
                json["weight_bytes"] = cost.WeightBytes;
                json["kv_bytes_per_token"] = cost.KvBytesPerToken;
                json["decode_only_steps"] = Statistics.NumDecodeOnlySteps;
                json["decode_step_bytes_mean"] = Math.Round(DecodeStepBytes);
                json["decode_step_ms_mean"] = Math.Round(DecodeStepMs, 3);
                json["decode_gb_per_s"] = Math.Round(Statistics.DecodeBytesPerSecond / 1e9, 1);
                if (Peaks.CopyBandwidthGBps > 0) json["decode_roofline_fraction"] = Math.Round(Statistics.DecodeBytesPerSecond / 1e9 / Peaks.CopyBandwidthGBps, 4);
                json["prefill_steps"] = Statistics.NumPrefillSteps;
                json["prefill_tflops"] = Math.Round(Statistics.PrefillFlopsPerSecond / 1e12, 2);
                if (Peaks.MatmulTflops > 0) json["prefill_matmul_fraction"] = Math.Round(Statistics.PrefillFlopsPerSecond / 1e12 / Peaks.MatmulTflops, 4);
            }
            if (Statistics.NumForkedChoices > 0)
            {
                json["forked_choices"] = Statistics.NumForkedChoices;
                json["forked_prompt_tokens"] = Statistics.NumForkedTokens;
            }
            if (Statistics.NumGraphSamplings > 0)
            {
                json["graph_samplings"] = Statistics.NumGraphSamplings;
                json["graph_sampling_ms"] = Math.Round(Statistics.GraphSamplingTime.TotalMilliseconds, 1);
            }
            if (Statistics.NumGraphLogprobRuns > 0)
            {
                json["graph_logprob_runs"] = Statistics.NumGraphLogprobRuns;
                json["graph_logprob_ms"] = Math.Round(Statistics.GraphLogprobTime.TotalMilliseconds, 1);
            }
            return json.ToJsonString(JsonOutput.Options);
        }

        /// <summary>The decode-only steps against the memory roofline, the steps with prompt chunks against the matmul rate.</summary>
        private IEnumerable<string> RooflineLines()
        {
            var inv = CultureInfo.InvariantCulture;
            var kvBytes = DecodeStepBytes - Cost!.WeightBytes;
            static string Size(double bytes) => bytes >= 1e9
                ? (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " GB"
                : (bytes / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " MB";
            var decode = $"decode roofline       {Statistics.NumDecodeOnlySteps} decode-only steps, {Size(DecodeStepBytes)} a step by the byte model "
                + $"(weights {Size(Cost.WeightBytes)} + KV {Size(Math.Max(0, kvBytes))}) in {DecodeStepMs.ToString("F2", inv)} ms: "
                + $"{(Statistics.DecodeBytesPerSecond / 1e9).ToString("F1", inv)} GB/s";
            if (Peaks.CopyBandwidthGBps > 0 && Statistics.NumDecodeOnlySteps > 0)
            {
                var fraction = Statistics.DecodeBytesPerSecond / 1e9 / Peaks.CopyBandwidthGBps;
                decode += $" = {fraction.ToString("P1", inv)} of {Peaks.CopyBandwidthGBps.ToString("0.###", inv)} GB/s (step / floor {(1 / fraction).ToString("F2", inv)})";
            }
            yield return decode;
            var prefill = $"prefill rate          {Statistics.NumPrefillSteps} steps with prompt chunks: {(Statistics.PrefillFlopsPerSecond / 1e12).ToString("F3", inv)} TFLOP/s by the FLOP count";
            if (Peaks.MatmulTflops > 0 && Statistics.NumPrefillSteps > 0)
            {
                prefill += $" = {(Statistics.PrefillFlopsPerSecond / 1e12 / Peaks.MatmulTflops).ToString("P1", inv)} of {Peaks.MatmulTflops.ToString("0.###", inv)} TFLOP/s";
            }
            yield return prefill;
        }

        internal JsonObject Figures() => new()
        {
            ["requests"] = Results.Count,
            ["errors"] = NumErrors,
            ["output_tokens"] = OutputTokens,
            ["seconds"] = Math.Round(Elapsed.TotalSeconds, 3),
            ["output_tokens_per_s"] = Math.Round(OutputTokensPerSecond, 1),
            ["requests_per_s"] = Math.Round(RequestsPerSecond, 3),
            ["kv_slots"] = NumSlots,
            ["mean_batch_occupancy"] = Math.Round(Statistics.MeanBatchOccupancy, 3),
            ["ttft_p50_ms"] = Math.Round(TtftPercentileMs(50), 1),
            ["ttft_p99_ms"] = Math.Round(TtftPercentileMs(99), 1),
            ["steps"] = Statistics.NumSteps,
            ["prompt_tokens"] = PromptTokens,
            ["prefill_tokens"] = Statistics.NumPrefillTokens,
            ["prefill_per_prompt_token"] = Math.Round(PrefillPerPromptToken, 4),
            ["decode_tokens"] = Statistics.NumDecodeTokens,
            ["mean_step_ms"] = Math.Round(MeanStepMs, 2),
            ["logit_rows_read"] = Statistics.NumLogitRowsRead,
            ["logit_rows_per_step"] = Math.Round(LogitRowsPerStep, 3),
        };

        public string ToTable(string modelName, bool sequential) => string.Join('\n', TableLines(modelName, sequential));

        private IEnumerable<string> TableLines(string modelName, bool sequential)
        {
            string[] lines =
            [
                $"model                 {modelName} ({(sequential ? "sequential" : "continuous batching")})",
                $"requests              {Results.Count} ({NumErrors} errors)",
                $"output tokens         {OutputTokens}",
                $"wall time             {Elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s",
                $"output tokens/s       {OutputTokensPerSecond.ToString("F1", CultureInfo.InvariantCulture)}",
                $"requests/s            {RequestsPerSecond.ToString("F3", CultureInfo.InvariantCulture)}",
                $"mean batch occupancy  {Statistics.MeanBatchOccupancy.ToString("P1", CultureInfo.InvariantCulture)} of {NumSlots} KV slots",
                $"TTFT p50 / p99        {TtftPercentileMs(50).ToString("F1", CultureInfo.InvariantCulture)} / {TtftPercentileMs(99).ToString("F1", CultureInfo.InvariantCulture)} ms",
                $"engine steps          {Statistics.NumSteps} ({Statistics.NumPrefillTokens} prefill + {Statistics.NumDecodeTokens} decode tokens)",
                $"prompt tokens         {PromptTokens} ({PrefillPerPromptToken.ToString("F3", CultureInfo.InvariantCulture)} prefill tokens computed per prompt token)",
                $"mean step time        {MeanStepMs.ToString("F2", CultureInfo.InvariantCulture)} ms",
                $"logits rows to host   {Statistics.NumLogitRowsRead} ({LogitRowsPerStep.ToString("F2", CultureInfo.InvariantCulture)} per step)",
            ];
            IEnumerable<string> all = lines;
            if (CudaGraphs) all = all.Append("CUDA graphs           decode steps replayed (--cuda-graphs)");
            if (Cost is not null)
            {
                all = all.Concat(RooflineLines());
            }
            if (Statistics.NumForkedChoices > 0)
            {
                all = all.Append($"forked choices        {Statistics.NumForkedChoices} took their prompt's KV from a fork ({Statistics.NumForkedTokens} prompt tokens not computed again)");
            }
            if (Statistics.NumGraphSamplings > 0)
            {
                var total = Statistics.GraphSamplingTime.TotalMilliseconds;
                all = all.Append($"graph sampling        {(total / Statistics.NumSteps).ToString("F2", CultureInfo.InvariantCulture)} ms per step "
                    + $"({Statistics.NumGraphSamplings} runs of {(total / Statistics.NumGraphSamplings).ToString("F2", CultureInfo.InvariantCulture)} ms)");
            }
            if (Statistics.NumGraphLogprobRuns > 0)
            {
                var total = Statistics.GraphLogprobTime.TotalMilliseconds;
                all = all.Append($"graph logprobs        {(total / Statistics.NumSteps).ToString("F2", CultureInfo.InvariantCulture)} ms per step "
                    + $"({Statistics.NumGraphLogprobRuns} runs of {(total / Statistics.NumGraphLogprobRuns).ToString("F2", CultureInfo.InvariantCulture)} ms)");
            }
            return Blocks is { } blocks
                ? all.Append($"paged KV              {blocks.NumBlocks} blocks of {blocks.BlockSize} tokens"
                        + (Cost is { } cost ? $" ({cost.KvBytesPerToken:N0} bytes a token)" : "") + $", {Statistics.NumPreemptions} preemptions"
                        + (Statistics.NumSwapOuts > 0
                            ? $" recomputed, {Statistics.NumSwapOuts} swapped to host ({Statistics.NumSwappedOutBlocks} blocks out, {Statistics.NumSwappedInBlocks} in, {Statistics.SwapTime.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture)} ms)"
                            : ""))
                    .Append(PrefixCache
                        ? $"prefix cache          {Statistics.NumCachedPromptTokens} prompt tokens taken from cached blocks (beside {Statistics.NumPrefillTokens} prefill tokens computed), {Statistics.NumEvictedBlocks} blocks evicted"
                        : "prefix cache          off")
                : all;
        }
    }

    /// <summary>A device's measured copy bandwidth (GB/s, bytes read + written) and matmul rate (TFLOP/s); 0: not measured.</summary>
    internal readonly record struct DevicePeaks(double CopyBandwidthGBps, double MatmulTflops);
}
