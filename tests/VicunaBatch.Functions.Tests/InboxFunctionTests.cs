using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Azure.Storage.Queues.Models;
using VicunaBatch.Azure.Tests;
using VicunaBatch.Core.ControlPlane;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Functions.Tests;

/// <summary>
/// The inbox path as it runs on Azure: a file lands in the inbox container, its BlobCreated event (Event Grid schema,
/// the shape of the documented sample) goes to the inbox-events queue as Event Grid writes it (Base64 text, what the
/// host decodes with host.json's <c>messageEncoding</c>), and the host's trigger hands the message to the function.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class InboxFunctionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Input = "{\"custom_id\":\"a\",\"prompt\":\"one\"}\n{\"custom_id\":\"b\",\"prompt\":\"two\"}\n{\"custom_id\":\"c\",\"prompt\":\"three\"}\n";

    private FunctionsRig _rig = null!;

    public Task InitializeAsync()
    {
        _rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Inbox:WebhookUrl"] = "https://example.test/inbox-hook" });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    /// <summary>What a person does: upload a blob into the inbox container (outside the app's ports).</summary>
    private async Task<BlobClient> DropAsync(string name, string content)
    {
        _ = _rig.Blobs; // containers exist once the store is resolved
        var blob = azurite.Blobs.GetBlobContainerClient(_rig.Containers.Inbox).GetBlobClient(name);
        await blob.UploadAsync(BinaryData.FromString(content), overwrite: true);
        return blob;
    }

    /// <summary>The BlobCreated event the storage account's system topic publishes for <paramref name="url"/>
    /// (Microsoft's sample event with this blob's URL, ETag, length and subject).</summary>
    private static async Task<string> BlobCreatedAsync(BlobClient blob, Uri? url = null)
    {
        var properties = (await blob.GetPropertiesAsync()).Value;
        return new JsonObject
        {
            ["topic"] = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-vicuna-dev/providers/Microsoft.Storage/storageAccounts/" + blob.AccountName,
            ["subject"] = $"/blobServices/default/containers/{blob.BlobContainerName}/blobs/{blob.Name}",
            ["eventType"] = "Microsoft.Storage.BlobCreated",
            ["id"] = Guid.NewGuid().ToString(),
            ["data"] = new JsonObject
            {
                ["api"] = "PutBlob",
                ["clientRequestId"] = "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
                ["requestId"] = "831e1650-001e-001b-66ab-eeb76e000000",
                ["eTag"] = properties.ETag.ToString().Trim('"'), // Event Grid writes it unquoted
                ["contentType"] = "application/octet-stream",
                ["contentLength"] = properties.ContentLength,
                ["blobType"] = "BlockBlob",
                ["url"] = (url ?? blob.Uri).AbsoluteUri,
                ["sequencer"] = "00000000000004420000000000028963",
                ["storageDiagnostics"] = new JsonObject { ["batchId"] = "b68529f3-68cd-4744-baa4-3c0498ec19f0" },
            },
            ["dataVersion"] = "",
            ["metadataVersion"] = "1",
            ["eventTime"] = "2026-12-01T09:00:00.000Z",
        }.ToJsonString();
    }

    private async Task EnqueueAsync(string eventText) => await _rig.RawQueue(_rig.InboxEventsName).SendMessageAsync(eventText);

    private async Task<int> EventsLeftAsync() => (await _rig.RawQueue(_rig.InboxEventsName).GetPropertiesAsync()).Value.ApproximateMessagesCount;

    [Fact]
    public async Task Run_blobCreatedEvent_makesTheFileAJobThatRunsToCompletion()
    {
        var blob = await DropAsync("daily/prompts.jsonl", Input);
        await EnqueueAsync(await BlobCreatedAsync(blob));

        var job = Assert.Single(await _rig.RunInboxAsync());

        var etag = (await blob.GetPropertiesAsync()).Value.ETag.ToString();
        Assert.Equal(InboxSubmitter.JobIdFor("daily/prompts.jsonl", etag), job!.Id);
        Assert.Equal((JobStatus.InProgress, 3), (job.Status, job.RequestCounts.Total));
        Assert.Equal(2, await _rig.Shards.CountAsync());
        Assert.Equal($"files/{job.Id}/content.jsonl", job.InputFileId);
        Assert.Equal(Input, Encoding.UTF8.GetString(await _rig.Blobs.ReadBytesAsync(job.InputFileId)));
        Assert.Equal("daily/prompts.jsonl", job.Metadata!["inbox_blob"]);
        Assert.Equal("https://example.test/inbox-hook", job.Webhook!.Url);
        Assert.Equal(0, await EventsLeftAsync()); // the host deleted the message: the function returned

        await _rig.RunShardsAsync();
        await _rig.RunFinalizerAsync();
        Assert.Equal(new RequestCounts(3, 3, 0), (await _rig.Jobs.GetAsync(job.Id))!.Job.RequestCounts);
    }

    [Fact]
    public async Task Run_redeliveredEvent_findsTheSameJobAndSendsNoShardTwice()
    {
        var blob = await DropAsync("daily/prompts.jsonl", Input);
        var created = await BlobCreatedAsync(blob);
        await EnqueueAsync(created);
        var first = Assert.Single(await _rig.RunInboxAsync());
        await EnqueueAsync(created); // Event Grid delivers at least once

        var again = Assert.Single(await _rig.RunInboxAsync());

        Assert.Equal(first!.Id, again!.Id);
        Assert.Equal(2, await _rig.Shards.CountAsync()); // sent once: the redelivery found the job past validating
        Assert.Single(await _rig.Blobs.ListAsync($"files/{first.Id}/").ToListAsync());
    }

    [Fact]
    public async Task Run_nameWithSpacesAndEscapes_mapsTheUrlBackToTheBlobName()
    {
        var blob = await DropAsync("reports 2026/déjà vu #1.txt", "one\ntwo\n");
        await EnqueueAsync(await BlobCreatedAsync(blob));

        var job = Assert.Single(await _rig.RunInboxAsync());

        Assert.Equal("reports 2026/déjà vu #1.txt", job!.Metadata!["inbox_blob"]);
        Assert.Equal((2, ".txt"), (job.RequestCounts.Total, Path.GetExtension(job.InputFileId)));
    }

    [Fact]
    public async Task Run_sameNameOverwritten_isANewJobOnItsOwnCopy()
    {
        await EnqueueAsync(await BlobCreatedAsync(await DropAsync("p.txt", "one\ntwo\n")));
        var first = Assert.Single(await _rig.RunInboxAsync());
        await EnqueueAsync(await BlobCreatedAsync(await DropAsync("p.txt", "three\n")));
        var second = Assert.Single(await _rig.RunInboxAsync());

        Assert.NotEqual(first!.Id, second!.Id);
        Assert.Equal((2, 1), (first.RequestCounts.Total, second.RequestCounts.Total));
        Assert.Equal("one\ntwo\n", Encoding.UTF8.GetString(await _rig.Blobs.ReadBytesAsync(first.InputFileId)));
        Assert.EndsWith(".txt", first.InputFileId);
    }

    [Fact]
    public async Task Run_fileWithOnlyBadLines_endsAtOnce()
    {
        await EnqueueAsync(await BlobCreatedAsync(await DropAsync("bad.jsonl", "{nope\n")));

        var job = Assert.Single(await _rig.RunInboxAsync());

        Assert.Equal((JobStatus.Completed, new RequestCounts(1, 0, 1)), (job!.Status, job.RequestCounts));
    }

    public static TheoryData<string, string, string> FailedAtSubmit => new()
    {
        { "unserved.jsonl", "{\"custom_id\":\"a\",\"model\":\"nobody-serves-this\",\"prompt\":\"one\"}\n", "model_not_found" },
        { "empty.jsonl", "\n", "empty_input" },
    };

    [Theory]
    [MemberData(nameof(FailedAtSubmit))]
    public async Task Run_fileThatFailsAtSubmit_itsBatchFailedEventReachesTheInboxWebhook(string name, string content, string code)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var rig = new FunctionsRig(azurite, new Dictionary<string, string?> { ["Inbox:WebhookUrl"] = receiver.Url });
        _ = rig.Blobs; // containers exist once the store is resolved
        var blob = azurite.Blobs.GetBlobContainerClient(rig.Containers.Inbox).GetBlobClient(name);
        await blob.UploadAsync(BinaryData.FromString(content), overwrite: true);
        await rig.RawQueue(rig.InboxEventsName).SendMessageAsync(await BlobCreatedAsync(blob));

        var job = Assert.Single(await rig.RunInboxAsync());
        Assert.Equal((JobStatus.Failed, code), (job!.Status, job.Errors!.Data[0].Code));
        Assert.Equal(1, await rig.RunDelivererAsync());

        var (status, _, body) = Assert.Single(receiver.Received);
        var evt = JsonNode.Parse(body)!;
        Assert.Equal((200, "batch.failed", job.Id), (status, (string?)evt["type"], (string?)evt["data"]!["id"]));
    }

    [Fact]
    public async Task Run_blobDeletedBeforeTheEventArrives_submitsNothing()
    {
        var blob = await DropAsync("gone.jsonl", Input);
        var created = await BlobCreatedAsync(blob);
        await blob.DeleteAsync();
        await EnqueueAsync(created);

        Assert.Equal([null], await _rig.RunInboxAsync());
        Assert.Equal((0, 0), (await _rig.Shards.CountAsync(), await EventsLeftAsync()));
    }

    public static TheoryData<string> OutsideTheInbox => new()
    {
        "{container}",                                                          // same account, another container (the jobs one)
        "https://someoneelse.blob.core.windows.net/{inbox}/prompts.jsonl",      // another account's container of the same name
        "{account}/{inbox}",                                                    // the container itself, no blob
        "{account}/{inbox}x/prompts.jsonl",                                     // a container whose name starts like the inbox's
    };

    [Theory]
    [MemberData(nameof(OutsideTheInbox))]
    public async Task Run_urlOutsideTheInboxContainer_isLoggedAndDropped(string pattern)
    {
        var blob = await DropAsync("prompts.jsonl", Input);
        var account = azurite.Blobs.Uri.AbsoluteUri.TrimEnd('/');
        var url = pattern.Replace("{container}", $"{account}/{_rig.Containers.Jobs}/prompts.jsonl")
            .Replace("{account}", account).Replace("{inbox}", _rig.Containers.Inbox);
        await EnqueueAsync(await BlobCreatedAsync(blob, new Uri(url)));

        Assert.Equal([null], await _rig.RunInboxAsync());

        Assert.Equal((0, 0), (await _rig.Shards.CountAsync(), await EventsLeftAsync())); // deleted, not retried
        Assert.Empty(await _rig.Blobs.ListAsync("files/").ToListAsync());
    }

    public static TheoryData<string> Malformed => new()
    {
        "not json at all",
        "{\"id\":\"1\",\"subject\":\"s\",\"eventType\":\"Microsoft.Storage.BlobCreated\"", // cut short
        "[]",
        "{}",
        "{\"id\":\"1\",\"subject\":\"s\",\"eventType\":\"Microsoft.Storage.BlobDeleted\",\"data\":{\"eTag\":\"0x1\",\"url\":\"https://a.blob.core.windows.net/inbox/p.jsonl\"}}",
        "{\"id\":\"1\",\"subject\":\"s\",\"eventType\":\"Microsoft.Storage.BlobCreated\",\"data\":{\"eTag\":\"0x1\"}}",
        "{\"id\":\"1\",\"subject\":\"s\",\"eventType\":\"Microsoft.Storage.BlobCreated\",\"data\":{\"eTag\":\"0x1\",\"url\":\"inbox/p.jsonl\"}}",
        "{\"id\":\"1\",\"subject\":\"s\",\"eventType\":\"Microsoft.Storage.BlobCreated\",\"data\":{\"url\":\"https://a.blob.core.windows.net/inbox/p.jsonl\"}}",
        "{\"id\":\"1\",\"subject\":\"s\",\"eventType\":\"Microsoft.Storage.BlobCreated\",\"data\":\"https://a.blob.core.windows.net/inbox/p.jsonl\"}",
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task Run_malformedEvent_isLoggedAndDropped(string text)
    {
        await EnqueueAsync(text);

        Assert.Equal([null], await _rig.RunInboxAsync());

        Assert.Equal((0, 0), (await _rig.Shards.CountAsync(), await EventsLeftAsync()));
    }

    [Fact]
    public async Task Run_blobNameTheStoreRefuses_isDroppedNotRetried()
    {
        var blob = await DropAsync("ok.jsonl", Input);
        var account = azurite.Blobs.Uri.AbsoluteUri.TrimEnd('/');
        // "a//b.jsonl": a name Azure accepts but the blob store's names never have (an empty segment)
        await EnqueueAsync(await BlobCreatedAsync(blob, new Uri($"{account}/{_rig.Containers.Inbox}/a//b.jsonl")));

        Assert.Equal([null], await _rig.RunInboxAsync());
        Assert.Equal(0, await EventsLeftAsync());
    }

    [Fact]
    public void Parse_documentedSample_readsUrlETagSubjectAndApi()
    {
        // Microsoft's BlobCreated sample (Event Grid schema), abridged
        const string sample = """
            {"topic":"/subscriptions/{subscription-id}/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/my-storage-account",
             "subject":"/blobServices/default/containers/test-container/blobs/new-file.txt","eventType":"Microsoft.Storage.BlobCreated",
             "eventTime":"2017-06-26T18:41:00.9584103Z","id":"831e1650-001e-001b-66ab-eeb76e069631",
             "data":{"api":"PutBlockList","clientRequestId":"6d79dbfb-0e37-4fc4-981f-442c9ca65760","requestId":"831e1650-001e-001b-66ab-eeb76e000000",
                     "eTag":"0x8D4BCC2E4835CD0","contentType":"text/plain","contentLength":524288,"blobType":"BlockBlob",
                     "url":"https://my-storage-account.blob.core.windows.net/testcontainer/new-file.txt","sequencer":"00000000000004420000000000028963",
                     "storageDiagnostics":{"batchId":"b68529f3-68cd-4744-baa4-3c0498ec19f0"}},
             "dataVersion":"","metadataVersion":"1"}
            """;

        var created = BlobCreatedEvent.Parse(sample);

        Assert.Equal(new BlobCreatedEvent("831e1650-001e-001b-66ab-eeb76e069631", "/blobServices/default/containers/test-container/blobs/new-file.txt",
            new Uri("https://my-storage-account.blob.core.windows.net/testcontainer/new-file.txt"), "0x8D4BCC2E4835CD0", "PutBlockList"), created);
        Assert.Equal("new-file.txt", new InboxAddress("my-storage-account", "testcontainer").BlobNameOf(created.Url));
        Assert.Null(new InboxAddress("my-storage-account", "inbox").BlobNameOf(created.Url));
    }

    [Fact]
    public void RunAsync_triggersOnTheInboxEventsQueueSetting()
    {
        var parameter = typeof(InboxFunction).GetMethod(nameof(InboxFunction.RunAsync))!.GetParameters()[0];
        var trigger = (Microsoft.Azure.Functions.Worker.QueueTriggerAttribute)Attribute.GetCustomAttribute(parameter, typeof(Microsoft.Azure.Functions.Worker.QueueTriggerAttribute))!;

        // infra/bicep/modules/functions.bicep writes Storage__Queues__InboxEvents and ControlQueues__*
        Assert.Equal(("%Storage:Queues:InboxEvents%", "ControlQueues", typeof(QueueMessage)), (trigger.QueueName, trigger.Connection, parameter.ParameterType));
    }
}
