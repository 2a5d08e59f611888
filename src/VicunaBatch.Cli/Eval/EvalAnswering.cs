using System.Globalization;
using System.Text.Json.Nodes;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Cli.Eval;

/// <summary>How a model is asked: tokens per answer and the sampling temperature (both in every request line).</summary>
internal sealed record AnswerSettings(int MaxTokens, float Temperature);

/// <summary>What answering came to for one model: its answer file, how many questions and turns, and how many turns have no answer (<see cref="EvalFolder.ErrorText"/>).</summary>
internal sealed record AnswerSummary(string Model, string AnswerPath, int NumQuestions, int NumTurns, int NumUnansweredTurns);

/// <summary>
/// One model answers every question: turn k of all questions is one batch job, each request holding the question's
/// earlier turns and the model's own answers to them, then turn k's question. A turn whose request failed is
/// <see cref="EvalFolder.ErrorText"/>, as are the question's later turns (they are not asked: their prompt would hold no
/// answer). The answers go to <c>model_answer/MODEL.jsonl</c> in FastChat's format, in the questions' order.
/// </summary>
internal sealed class EvalAnswering(EvalFolder folder, IReadOnlyList<EvalQuestion> questions, TimeProvider time)
{
    public static string CustomIdOf(long questionId) => "q" + questionId.ToString(CultureInfo.InvariantCulture);

    public async Task<AnswerSummary> AnswerAsync(string model, IEvalBatchRunner runner, AnswerSettings settings, CancellationToken cancellationToken = default)
    {
        var turns = questions.ToDictionary(q => q.QuestionId, _ => new List<string>());
        var failed = new HashSet<long>();
        int numTurns = questions.Max(q => q.Turns.Count);
        for (var turn = 1; turn <= numTurns; turn++)
        {
            var asked = questions.Where(q => q.Turns.Count >= turn && !failed.Contains(q.QuestionId)).ToList();
            if (asked.Count == 0) break;
            var jobFolder = folder.AnswerJobFolder(model, turn);
            var input = Path.Combine(jobFolder, "input.jsonl");
            EvalJsonLines.Write(input, asked.Select(q => RequestLine(model, q, turns[q.QuestionId], turn, settings)));
            Console.Error.WriteLine($"{model}, turn {turn}: {asked.Count} question{(asked.Count == 1 ? "" : "s")}");
            var answers = await runner.RunAsync(input, jobFolder, cancellationToken);
            foreach (var question in asked)
            {
                if (answers.TryGetValue(CustomIdOf(question.QuestionId), out var answer) && answer.Text is { } text)
                {
                    turns[question.QuestionId].Add(text);
                    continue;
                }
                failed.Add(question.QuestionId);
            }
        }
        var tstamp = EvalJsonLines.Now(time);
        var lines = questions.Select(q =>
        {
            var answered = turns[q.QuestionId];
            IReadOnlyList<string> all = [.. answered, .. Enumerable.Repeat(EvalFolder.ErrorText, q.Turns.Count - answered.Count)];
            return new ModelAnswer(q.QuestionId, ModelAnswer.AnswerIdOf(model, q.QuestionId, all), model, all, tstamp).ToJson();
        }).ToList();
        EvalJsonLines.Write(folder.AnswerPath(model), lines);
        int numUnanswered = questions.Sum(q => q.Turns.Count - turns[q.QuestionId].Count);
        return new AnswerSummary(model, folder.AnswerPath(model), questions.Count, questions.Sum(q => q.Turns.Count), numUnanswered);
    }

    /// <summary>Turn <paramref name="turn"/>'s chat request: the earlier turns with the model's answers, then this turn's question.</summary>
    internal static JsonObject RequestLine(string model, EvalQuestion question, IReadOnlyList<string> answers, int turn, AnswerSettings settings)
    {
        var messages = new JsonArray();
        for (var k = 0; k < turn; k++)
        {
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = question.Turns[k] });
            if (k < turn - 1) messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = answers[k] });
        }
        return new JsonObject
        {
            ["custom_id"] = CustomIdOf(question.QuestionId),
            ["method"] = "POST",
            ["url"] = BatchEndpoints.ChatCompletionsUrl,
            ["body"] = new JsonObject
            {
                ["model"] = model, ["messages"] = messages, ["max_tokens"] = settings.MaxTokens, ["temperature"] = settings.Temperature,
            },
        };
    }
}
