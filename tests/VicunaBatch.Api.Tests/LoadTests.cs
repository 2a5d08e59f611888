using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// Bounded load on loopback: 20 clients at once, each uploading a file, creating a batch, polling it to completed and
/// downloading its output, against the serve host on 127.0.0.1; every job's results must be whole (the checker).
/// Bounded in count (20 jobs of 8 requests) and in time (90 s).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class LoadTests(ServerFixture server)
{
    private const int NumClients = 20;
    private const int RequestsPerJob = 8;

    [Fact]
    public async Task Twenty_concurrent_clients_each_get_whole_results()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var reports = await Task.WhenAll(Enumerable.Range(0, NumClients).Select(c => RunClientAsync(c, timeout.Token)));

        Assert.All(reports, report => Assert.Empty(report.Problems));
        Assert.All(reports, report => Assert.Equal((RequestsPerJob, RequestsPerJob), (report.NumValidRequests, report.NumOutputLines)));
    }

    private async Task<CheckReport> RunClientAsync(int client, CancellationToken cancellationToken)
    {
        // tenants spread over the server's keys: several clients share one, as teams do
        using var http = server.Client(ServerFixture.LoadKeys[client % ServerFixture.LoadKeys.Length]);
        var lines = Api.ChatLines([.. Enumerable.Range(0, RequestsPerJob).Select(i => $"c{client}-r{i}")]);
        var file = await Api.UploadAsync(http, lines);
        var created = await Api.ReadAsync(await Api.CreateBatchAsync(http, file.GetProperty("id").GetString()!), 200);
        var done = await Api.PollAsync(http, created.GetProperty("id").GetString()!, "completed").WaitAsync(cancellationToken);
        var output = await http.GetByteArrayAsync($"v1/files/{done.GetProperty("output_file_id").GetString()}/content", cancellationToken);

        static MemoryStream Stream(string text) => new(System.Text.Encoding.UTF8.GetBytes(text));
        return await new ResultsChecker(new InputOptions()).CheckAsync(
            Stream(lines), InputFormat.Jsonl, new MemoryStream(output), Stream(""), Stream(done.GetRawText()), cancellationToken: cancellationToken);
    }
}
