using System.Text;

namespace VicunaBatch.Cli.Eval;

/// <summary>A judge request: the prompt's name (the judgment's <c>judge[1]</c>), its system instruction and its user message.</summary>
internal sealed record JudgePrompt(string Name, string System, string User);

/// <summary>
/// The judge's prompts, ours, built as the Vicuna evaluation's are: a system instruction saying what to weigh and the
/// verdict's exact form, then the question (or the whole conversation, for a second turn) and the answer or answers,
/// each fenced by markers. Single answers are rated <c>Rating: [[n]]</c> on 1-10; pairs end in <c>[[A]]</c>,
/// <c>[[B]]</c> or <c>[[C]]</c> (a tie). A second turn is judged on the conversation so far, its last answer graded.
/// </summary>
internal static class JudgePrompts
{
    public const string SingleName = "vb-single-v1";
    public const string SingleMultiTurnName = "vb-single-v1-multi-turn";
    public const string PairName = "vb-pair-v1";
    public const string PairMultiTurnName = "vb-pair-v1-multi-turn";

    private const string Weigh = "how helpful, relevant, accurate, deep, creative and detailed it is";

    private const string SingleSystem =
        "You are a fair and exacting judge of AI assistants. Below is a user's question and one assistant's answer. " +
        $"Grade the answer: consider {Weigh}. Write a short, objective assessment first. Then give your grade on a scale " +
        "of 1 (worst) to 10 (best) in exactly this form: \"Rating: [[n]]\", for example \"Rating: [[4]]\".";

    private const string SingleMultiTurnSystem =
        "You are a fair and exacting judge of AI assistants. Below is a conversation between a user and an assistant. " +
        $"Grade only the assistant's answer to the user's last question, in the light of the conversation before it: consider {Weigh}. " +
        "Write a short, objective assessment first. Then give your grade on a scale of 1 (worst) to 10 (best) in exactly this " +
        "form: \"Rating: [[n]]\", for example \"Rating: [[4]]\".";

    private const string PairSystem =
        "You are a fair and exacting judge of AI assistants. Below is a user's question and the answers of two assistants, " +
        $"A and B. Decide which answer serves the user better: consider {Weigh}. Neither the order of the answers, nor their " +
        "length, nor the assistants' names may sway you. Write a short comparison first. Then give your verdict in exactly one " +
        "of these forms: \"[[A]]\" when A's answer is better, \"[[B]]\" when B's answer is better, \"[[C]]\" for a tie.";

    private const string PairMultiTurnSystem =
        "You are a fair and exacting judge of AI assistants. Below are two conversations of a user with two assistants, A and " +
        "B, the user asking the same questions. Decide which assistant answers the user's last question better, in the light " +
        $"of the conversation before it: consider {Weigh}. Neither the order of the conversations, nor the answers' length, " +
        "nor the assistants' names may sway you. Write a short comparison first. Then give your verdict in exactly one of " +
        "these forms: \"[[A]]\" when A's answer is better, \"[[B]]\" when B's answer is better, \"[[C]]\" for a tie.";

    /// <summary>The prompt grading <paramref name="answer"/>'s turn <paramref name="turn"/> (from 1) of <paramref name="question"/>.</summary>
    public static JudgePrompt Single(EvalQuestion question, IReadOnlyList<string> answer, int turn)
    {
        if (turn == 1)
            return new JudgePrompt(SingleName, SingleSystem, $"[Question]\n{question.Turns[0]}\n\n[Answer]\n{answer[0]}\n[End of Answer]");
        return new JudgePrompt(SingleMultiTurnName, SingleMultiTurnSystem, $"[Conversation]\n{Conversation(question, answer, turn)}[End of Conversation]");
    }

    /// <summary>The prompt comparing turn <paramref name="turn"/> of answer <paramref name="a"/> (shown as A) with <paramref name="b"/>'s (B).</summary>
    public static JudgePrompt Pair(EvalQuestion question, IReadOnlyList<string> a, IReadOnlyList<string> b, int turn)
    {
        if (turn == 1)
        {
            return new JudgePrompt(PairName, PairSystem,
                $"[Question]\n{question.Turns[0]}\n\n[Assistant A's Answer]\n{a[0]}\n[End of Assistant A's Answer]\n\n" +
                $"[Assistant B's Answer]\n{b[0]}\n[End of Assistant B's Answer]");
        }
        return new JudgePrompt(PairMultiTurnName, PairMultiTurnSystem,
            $"[Conversation with Assistant A]\n{Conversation(question, a, turn)}[End of Conversation with Assistant A]\n\n" +
            $"[Conversation with Assistant B]\n{Conversation(question, b, turn)}[End of Conversation with Assistant B]");
    }

    private static string Conversation(EvalQuestion question, IReadOnlyList<string> answer, int turn)
    {
        var text = new StringBuilder();
        for (var k = 0; k < turn; k++) text.Append($"User: {question.Turns[k]}\n\nAssistant: {answer[k]}\n\n");
        return text.ToString();
    }
}
