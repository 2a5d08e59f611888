using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Azure.Tests;

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>Deterministic stand-in for the engine: "echo: {prompt}"; prompt "boom" throws; <see cref="BeforeReturn"/> runs before each answer.</summary>
internal sealed class EchoExecutor(DateTimeOffset start) : IRequestExecutor
{
    public List<string> Executed { get; } = [];
    public Action? BeforeReturn { get; init; }

    public Task<RequestOutcome> ExecuteAsync(BatchRequest request, CancellationToken cancellationToken = default)
    {
        lock (Executed) Executed.Add(request.CustomId);
        BeforeReturn?.Invoke();
        var prompt = request.Prompt ?? request.Messages[^1].Content;
        if (prompt == "boom") throw new InvalidOperationException("engine exploded");
        return Task.FromResult(RequestOutcome.Success(request, "echo-model", $"echo: {prompt}", FinishReason.Stop, prompt.Length, 2,
            start.AddSeconds(request.LineNumber)));
    }
}

/// <summary>A fresh folder under the temp directory, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("vicuna-azure-test-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
