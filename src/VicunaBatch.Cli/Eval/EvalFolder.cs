namespace VicunaBatch.Cli.Eval;

/// <summary>
/// An evaluation's folder, laid out as FastChat's llm_judge lays out a benchmark's (<c>data/BENCH/</c>), so its tools
/// read ours: <c>question.jsonl</c> (the questions answered), <c>model_answer/NAME.jsonl</c>,
/// <c>model_judgment/JUDGE_MODE.jsonl</c>; and ours beside them: <c>results.md</c>, <c>results.svg</c>, and
/// <c>.jobs/</c>, the batch jobs' inputs and files (what a rerun resumes).
/// </summary>
internal sealed class EvalFolder(string path)
{
    /// <summary>What a request that got no answer has as its text: FastChat's <c>API_ERROR_OUTPUT</c>.</summary>
    public const string ErrorText = "$ERROR$";

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public string QuestionsPath => System.IO.Path.Combine(Path, "question.jsonl");

    public string AnswersFolder => System.IO.Path.Combine(Path, "model_answer");

    public string JudgmentsFolder => System.IO.Path.Combine(Path, "model_judgment");

    public string AnswerPath(string model) => System.IO.Path.Combine(AnswersFolder, model + ".jsonl");

    public string JudgmentPath(string judge, JudgeMode mode) => System.IO.Path.Combine(JudgmentsFolder, $"{judge}_{mode.Name()}.jsonl");

    /// <summary>The batch job of one model's turn (<paramref name="turn"/> from 1), or of one judging run.</summary>
    public string AnswerJobFolder(string model, int turn) => System.IO.Path.Combine(Path, ".jobs", "answer", model, $"turn-{turn}");

    public string JudgeJobFolder(string judge, JudgeMode mode) => System.IO.Path.Combine(Path, ".jobs", "judge", $"{judge}_{mode.Name()}");

    public string ResultsMarkdownPath => System.IO.Path.Combine(Path, "results.md");

    public string ResultsChartPath => System.IO.Path.Combine(Path, "results.svg");

    /// <summary>The models that have an answer file, by name, in ordinal order.</summary>
    public IReadOnlyList<string> AnsweredModels() => Directory.Exists(AnswersFolder)
        ? [.. Directory.EnumerateFiles(AnswersFolder, "*.jsonl").Select(f => System.IO.Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal)]
        : [];

    /// <summary>
    /// Keeps <paramref name="questionsPath"/> as this folder's <c>question.jsonl</c>; an evaluation folder answers one set
    /// of questions, so a folder that holds other ones is refused (a usage error) before anything is asked.
    /// </summary>
    public void KeepQuestions(string questionsPath)
    {
        var given = File.ReadAllBytes(questionsPath);
        if (File.Exists(QuestionsPath))
        {
            if (File.ReadAllBytes(QuestionsPath).AsSpan().SequenceEqual(given)) return;
            throw new UsageException($"{Path} holds other questions ({QuestionsPath}); give each set of questions its own --out");
        }
        Directory.CreateDirectory(Path);
        WriteAtomically(QuestionsPath, given);
    }

    /// <summary>The questions of this folder: <paramref name="questionsPath"/> when given, else its <c>question.jsonl</c>.</summary>
    public IReadOnlyList<EvalQuestion> Questions(string? questionsPath)
    {
        var path = questionsPath ?? QuestionsPath;
        if (questionsPath is null && !File.Exists(path))
            throw new UsageException($"{Path} has no question.jsonl (eval answer writes it): give --questions FILE");
        return EvalQuestion.ReadAll(path);
    }

    /// <summary>Writes a file whole or not at all: a reader never sees half of it, a crash leaves the old one.</summary>
    public static void WriteAtomically(string path, byte[] content)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var partial = path + ".partial";
        File.WriteAllBytes(partial, content);
        File.Move(partial, path, overwrite: true);
    }
}
