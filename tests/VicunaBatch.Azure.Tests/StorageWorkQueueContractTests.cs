using VicunaBatch.Contracts;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// The work-queue contract on <see cref="StorageWorkQueue"/> against a real Azurite. The service keeps time, so the
/// contract waits real seconds: a 3-second lock, one second of slack on each side of every instant it checks (visibility
/// times are whole seconds on the service).
/// </summary>
[Collection(AzuriteQueueContractCollection.Name)]
public sealed class StorageWorkQueueContractTests(AzuriteFixture azurite) : WorkQueueContract
{
    private readonly string _name = azurite.UniqueName("contract");

    protected override TimeSpan LockDuration => TimeSpan.FromSeconds(3);

    protected override TimeSpan Slack => TimeSpan.FromSeconds(1);

    public override Task InitializeAsync() => Queue().CreateIfNotExistsAsync();

    protected override IWorkQueue Open() => Queue();

    protected override DateTimeOffset Now => DateTimeOffset.UtcNow;

    protected override Task PassAsync(TimeSpan time) => Task.Delay(time);

    protected override async Task<IReadOnlyList<DeadLetterSeen>> ReadDeadLettersAsync() =>
        (await Queue().PeekDeadLettersAsync()).Select(d => new DeadLetterSeen(d.MessageId, d.Reason ?? "", d.DeliveryCount)).ToList();

    /// <summary>A Storage queue's order is best effort.</summary>
    protected override bool KeepsSendOrder => false;

    /// <summary>A Storage queue has no duplicate detection.</summary>
    protected override bool DetectsDuplicates => false;

    /// <summary>A pop receipt holds until the message is received again, updated or deleted.</summary>
    protected override bool LockLostWhenItExpires => false;

    private StorageWorkQueue Queue() => new(azurite.Queues(), _name, LockDuration, TimeProvider.System);
}

/// <summary>The Storage queue contract waits real seconds: its own Azurite, so it runs beside the other Azurite tests, not after them.</summary>
[CollectionDefinition(Name)]
public sealed class AzuriteQueueContractCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite-queue-contract";
}
