using System.CommandLine;
using System.Globalization;
using VicunaBatch.Core.Formats;
using VicunaBatch.Execution;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// <c>vicuna-batch eval answer|judge|show</c>: the Vicuna evaluation as batch jobs. Models answer a question file (each
/// turn one job, here or on any OpenAI-compatible Batch API), a judge model grades or compares the answers in one batch
/// on such an API, and the results become tables and a chart. The folder is FastChat's llm_judge layout (<see cref="EvalFolder"/>).
/// </summary>
internal static class EvalCommand
{
    public static Command Create() => new("eval", "Evaluate models as the Vicuna article did: answer a question set, judge the answers with a model, show the results.")
    {
        Answer(), Judge(), Show(), Run(),
    };

    private static Command Answer()
    {
        var modelOptions = new ModelOptions();
        var server = new ClientCommands.ServerOptions("--url",
            "A batch API (ours or OpenAI's) that serves the --model names; without it, each --model NAME=DIR runs on this machine.", urlDefaulted: false);
        var questions = new Argument<FileInfo>("QUESTIONS") { Description = "Questions, JSONL: {\"question_id\", \"category\", \"turns\": [...]} a line (FastChat's question.jsonl)." };
        var output = new Option<DirectoryInfo>("--out") { Description = "The evaluation folder: question.jsonl, model_answer/NAME.jsonl, .jobs/.", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per answer.", DefaultValueFactory = _ => 1024 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature of every answer (0 = greedy).", DefaultValueFactory = _ => 0.7f };
        var command = new Command("answer",
            "Each model answers every question: each turn is one batch job, its prompts holding the earlier turns and the model's own answers. " +
            "Writes OUT/model_answer/NAME.jsonl in FastChat's answer format. Run it again to resume.")
        {
            questions, output, maxTokens, temperature,
        };
        modelOptions.AddTo(command, served: true);
        modelOptions.Served.Description = "NAME=DIR: the model package in DIR answers as NAME (the answer file's name); repeat it for several. " +
            "With --url: NAME, a model the API serves.";
        server.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var settings = new AnswerSettings(r.GetValue(maxTokens), r.GetValue(temperature));
            new RequestDefaults { MaxTokens = settings.MaxTokens, Temperature = settings.Temperature }.Validate();
            var folder = new EvalFolder(r.GetValue(output)!.FullName);
            var questionsPath = r.GetValue(questions)!.FullName;
            var asked = EvalQuestion.ReadAll(questionsPath);
            var given = r.GetValue(modelOptions.Served) ?? [];
            if (given.Length == 0) throw new UsageException("give --model NAME=DIR (or NAME with --url) for each model that answers");
            BatchApiClient? client = server.UrlGiven(r) ? server.Client(r) : null;
            var models = client is null
                ? given.Select(ModelChoice.Parse).Select(m => (m.Name, Runner: (IEvalBatchRunner)new LocalBatchRunner(m, modelOptions.EngineOptions(r), workers: 4))).ToList()
                : given.Select(name => (Name: ModelName(name), Runner: (IEvalBatchRunner)new ApiBatchRunner(client))).ToList();
            if (models.Select(m => m.Name).Distinct().Count() < models.Count) throw new UsageException("two --model options give the same name; each model needs its own");
            // every package is read before anything is asked or written: a bad path fails the command, not its third model
            if (client is null) foreach (var choice in given.Select(ModelChoice.Parse)) Inference.Package.ModelPackage.Load(choice.Path);
            folder.KeepQuestions(questionsPath);
            int exitCode = 0;
            using (client)
            {
                var answering = new EvalAnswering(folder, asked, TimeProvider.System);
                foreach (var (name, runner) in models)
                {
                    var summary = await answering.AnswerAsync(name, runner, settings, cancellationToken);
                    Console.Out.WriteLine(Invariant($"{name}: {summary.NumQuestions} questions, {summary.NumTurns - summary.NumUnansweredTurns} of {summary.NumTurns} turns answered: {summary.AnswerPath}"));
                    if (summary.NumUnansweredTurns > 0)
                    {
                        Console.Error.WriteLine(Invariant($"{name}: {summary.NumUnansweredTurns} turns have no answer ({EvalFolder.ErrorText}); the jobs' errors.jsonl under {Path.Combine(folder.Path, ".jobs")} say why"));
                        exitCode = 1;
                    }
                }
            }
            return exitCode;
        });
        return command;
    }

    private static Command Judge()
    {
        var server = new ClientCommands.ServerOptions("--judge-url", "The batch API serving the judge model (ours, or OpenAI's: https://api.openai.com).");
        var folderArgument = new Argument<DirectoryInfo>("EVALDIR") { Description = "The evaluation folder eval answer wrote." };
        var questions = new Option<FileInfo?>("--questions") { Description = "The questions answered. Default: EVALDIR/question.jsonl." };
        var judgeModel = new Option<string>("--judge-model") { Description = "The judge model's name at the API.", Required = true };
        var mode = new Option<string>("--mode")
        {
            Description = "single: each answer graded 1-10; pairwise-baseline: each model against --baseline; pairwise-all: every two models. Pairs are judged in both orders.",
            DefaultValueFactory = _ => JudgeMode.Single.Name(),
        };
        var baseline = new Option<string?>("--baseline") { Description = "The model every other is compared with (pairwise-baseline)." };
        var models = new Option<string[]>("--models") { Description = "Judge only these models' answers (repeatable). Default: every file of EVALDIR/model_answer." };
        var maxTokens = new Option<int>("--judge-max-tokens") { Description = "Tokens per judgment.", DefaultValueFactory = _ => 2048 };
        var command = new Command("judge",
            "Judge the answers in EVALDIR with a model, all prompts in ONE batch on a batch API; writes EVALDIR/model_judgment/JUDGE_MODE.jsonl. Run it again to resume.")
        {
            folderArgument, questions, judgeModel, mode, baseline, models, maxTokens,
        };
        server.AddTo(command);
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var judgeMode = JudgeModes.Parse(r.GetValue(mode)!) ?? throw new UsageException($"--mode {r.GetValue(mode)}: must be single, pairwise-baseline or pairwise-all");
            if (r.GetValue(maxTokens) < 1) throw new UsageException($"--judge-max-tokens {r.GetValue(maxTokens)}: must be at least 1");
            var folder = new EvalFolder(r.GetValue(folderArgument)!.FullName);
            var asked = folder.Questions(r.GetValue(questions)?.FullName);
            var answered = folder.AnsweredModels();
            var judged = r.GetValue(models) is { Length: > 0 } chosen ? chosen : answered;
            foreach (var model in judged.Where(m => !answered.Contains(m)))
                throw new UsageException($"{model} has no answers in {folder.AnswersFolder} (answered: {(answered.Count > 0 ? string.Join(", ", answered) : "none")})");
            var settings = new JudgeSettings(r.GetValue(judgeModel)!, judgeMode, r.GetValue(baseline), r.GetValue(maxTokens));
            if (judgeMode == JudgeMode.PairwiseBaseline && settings.Baseline is { } b && !judged.Contains(b))
                throw new UsageException($"--baseline {b} has no answers in {folder.AnswersFolder}");
            if (judgeMode.IsPairwise() && judged.Count < 2) throw new UsageException($"--mode {judgeMode.Name()} needs answers of two models at least");
            using var client = server.Client(r);
            var summary = await new EvalJudging(folder, asked, TimeProvider.System).JudgeAsync(judged, settings, new ApiBatchRunner(client), cancellationToken);
            Console.Out.WriteLine(Invariant(
                $"{summary.NumJudgments} judgments ({summary.NumGames} games): {summary.NumUnparsed} unparsable, {summary.NumFailed} failed: {summary.JudgmentPath}"));
            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var folderArgument = new Argument<DirectoryInfo>("EVALDIR") { Description = "The evaluation folder." };
        var questions = new Option<FileInfo?>("--questions") { Description = "The questions (for their categories). Default: EVALDIR/question.jsonl." };
        var baseline = new Option<string?>("--baseline") { Description = "Single grades: the model scores are relative to (default: the best). Pairwise: the baseline (default: the model in every pair)." };
        var command = new Command("show",
            "Print the results of every judgment file in EVALDIR/model_judgment as tables per model, overall and per category; write EVALDIR/results.md and the chart EVALDIR/results.svg.")
        {
            folderArgument, questions, baseline,
        };
        command.SetAction((ParseResult r) =>
        {
            var folder = new EvalFolder(r.GetValue(folderArgument)!.FullName);
            var asked = folder.Questions(r.GetValue(questions)?.FullName);
            var (markdown, charted) = EvalReport.Write(folder, asked, r.GetValue(baseline));
            Console.Out.Write(markdown);
            Console.Out.WriteLine($"\n{folder.ResultsMarkdownPath}\n{folder.ResultsChartPath} (from {charted.FileName})");
            return 0;
        });
        return command;
    }

    private static Command Run()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "An evaluation definition (JSON, \"kind\": \"eval\"): questions, models, judge, out, schedule, webhook." };
        var command = new Command("run",
            "One run of an evaluation definition now: answer, judge and show into OUT/RUN_ID/, then its webhook. serve --pipelines DIR runs the definitions in DIR on their schedules.")
        {
            file,
        };
        command.SetAction(async (ParseResult r, CancellationToken cancellationToken) =>
        {
            var definition = EvalDefinition.Load(r.GetValue(file)!.FullName);
            var result = await new EvalRun(definition, TimeProvider.System).RunAsync(cancellationToken);
            Console.Out.WriteLine($"run {result.RunId}{(result.Resumed ? " (resumed)" : "")}: {result.Folder.Path}");
            foreach (var a in result.Answers)
                Console.Out.WriteLine(Invariant($"  {a.Model}: {a.NumTurns - a.NumUnansweredTurns} of {a.NumTurns} turns answered"));
            foreach (var (mode, j) in result.Judgments)
                Console.Out.WriteLine(Invariant($"  {mode.Name()}: {j.NumGames} judgments, {j.NumUnparsed} unparsable, {j.NumFailed} failed"));
            Console.Out.WriteLine($"  {result.Folder.ResultsMarkdownPath}\n  {result.Folder.ResultsChartPath}");
            foreach (var attempt in result.WebhookAttempts)
                Console.Out.WriteLine($"  webhook {attempt.EventType}: {attempt.Outcome.SnakeCase()}{(attempt.StatusCode is { } code ? $" (HTTP {code})" : "")}{(attempt.Error is { } e ? $": {e}" : "")}");
            return 0;
        });
        return command;
    }

    /// <summary>A model at an API is named as it serves it; a NAME=DIR there is a mistake worth saying.</summary>
    private static string ModelName(string value) => value.Contains('=')
        ? throw new UsageException($"--model {value}: with --url give the model's name at the API (NAME=DIR runs a package here, without --url)")
        : value;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
