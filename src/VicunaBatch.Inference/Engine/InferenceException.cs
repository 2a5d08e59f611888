namespace VicunaBatch.Inference.Engine;

/// <summary>The model failed to run a step: every request of that step fails with this message.</summary>
public sealed class InferenceException : Exception
{
    public InferenceException(string message) : base(message) { }

    public InferenceException(string message, Exception inner) : base(message, inner) { }
}
