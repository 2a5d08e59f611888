using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Local.Tests.Webhooks;

namespace VicunaBatch.Local.Tests.ControlPlane;

/// <summary>
/// The inbox on one machine: a data folder composed as the hosts compose it (<c>AddLocalTransport</c>,
/// <c>AddVicunaBatchCore</c> with an inbox webhook), a file put at <c>inbox/{name}</c>, the submitter, and the deliverer
/// posting to a receiver on 127.0.0.1.
/// </summary>
public sealed class InboxSubmitterTests : IAsyncLifetime
{
    private readonly TempFolder _folder = new();
    private readonly LoopbackReceiver _receiver = new();
    private ServiceProvider _services = null!;

    public Task InitializeAsync()
    {
        _services = new ServiceCollection().AddLocalTransport(_folder.Path, local => local.FlushToDisk = false)
            .AddVicunaBatchCore(core =>
            {
                core.Models = LocalRig.Models.Names;
                core.Inbox = new InboxOptions { WebhookUrl = _receiver.Url };
                core.WebhookUrls = new WebhookUrlPolicyOptions { AllowHttp = true, AllowLoopback = true };
                core.Webhooks = new WebhookDelivererOptions { SigningSecret = WebhookSigner.GenerateSecret(), RetryDelays = WebhookRig.TestDelays };
            })
            .BuildServiceProvider();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _receiver.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }

    private async Task<BatchJob> DropAndSubmitAsync(string name, string content)
    {
        await _services.GetRequiredService<IBlobStore>().PutBytesAsync(InboxSubmitter.Prefix + name, Encoding.UTF8.GetBytes(content), BlobCondition.None);
        return (await _services.GetRequiredService<InboxSubmitter>().SubmitAsync(name))!;
    }

    public static TheoryData<string, string, string> FailedAtSubmit => new()
    {
        { "unserved.jsonl", "{\"custom_id\":\"a\",\"model\":\"nobody-serves-this\",\"prompt\":\"one\"}\n", "model_not_found" },
        { "empty.jsonl", "\n\n", "empty_input" },
    };

    [Theory]
    [MemberData(nameof(FailedAtSubmit))]
    public async Task SubmitAsync_jobFailedAtSubmit_isAnnouncedAndItsBatchFailedEventReachesTheWebhook(string name, string content, string code)
    {
        var job = await DropAndSubmitAsync(name, content);

        Assert.Equal((JobStatus.Failed, code), (job.Status, job.Errors!.Data[0].Code));
        Assert.True(await _services.GetRequiredService<IBlobStore>().ExistsAsync(JobIds.AnnouncedBlob(job.Id)));
        var attempts = await _services.GetRequiredService<WebhookDeliverer>().DeliverPendingAsync(TimeSpan.FromSeconds(5));
        Assert.Single(attempts);
        var request = Assert.Single(_receiver.Requests);
        using var body = JsonDocument.Parse(request.Body);
        Assert.Equal(("batch.failed", job.Id), (body.RootElement.GetProperty("type").GetString(), body.RootElement.GetProperty("data").GetProperty("id").GetString()));
    }

    [Fact]
    public async Task SubmitAsync_sameFailedFileSubmittedAgain_announcesItOnce()
    {
        var first = await DropAndSubmitAsync("unserved.jsonl", "{\"custom_id\":\"a\",\"model\":\"nobody-serves-this\",\"prompt\":\"one\"}\n");
        var again = await _services.GetRequiredService<InboxSubmitter>().SubmitAsync("unserved.jsonl"); // a redelivered event

        Assert.Equal(first.Id, again!.Id);
        await _services.GetRequiredService<WebhookDeliverer>().DeliverPendingAsync(TimeSpan.FromSeconds(5));
        Assert.Single(_receiver.Requests);
    }
}
