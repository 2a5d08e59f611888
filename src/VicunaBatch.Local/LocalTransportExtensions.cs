using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Local;

/// <summary>Options of <see cref="LocalTransportExtensions.AddLocalTransport"/>.</summary>
public sealed class LocalTransportOptions
{
    /// <summary>
    /// How long a received shard message stays locked to its receiver past each receive or renewal (<c>Local:LockSeconds</c>
    /// of <c>vicuna-worker</c>). A receiver whose process died loses its locks at the next receive of any other
    /// (<see cref="ReceiverLease"/>); this bounds a lock only while its process lives. Default 60 s.
    /// </summary>
    public TimeSpan WorkLockDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a received control message (a shard-done event, a webhook delivery) stays locked. Default 60 s.</summary>
    public TimeSpan ControlLockDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>fsync each blob and checkpoint before it counts. Default true.</summary>
    public bool FlushToDisk { get; set; } = true;

    public void Validate()
    {
        if (WorkLockDuration < TimeSpan.FromSeconds(1))
            throw new ArgumentOutOfRangeException(nameof(WorkLockDuration), WorkLockDuration, "must be at least 1 s");
        if (ControlLockDuration < TimeSpan.FromSeconds(1))
            throw new ArgumentOutOfRangeException(nameof(ControlLockDuration), ControlLockDuration, "must be at least 1 s");
    }
}

/// <summary>Wiring of the one-machine parts: the one place that turns a data folder into ports.</summary>
public static class LocalTransportExtensions
{
    /// <summary>
    /// Registers the ports over the data folder <paramref name="dataPath"/> (<see cref="LocalDataFolder"/>, made 0700 if
    /// missing): <see cref="IBlobStore"/> (<see cref="FolderBlobStore"/>, its files 0600), <see cref="ICheckpointStore"/>
    /// (<see cref="FolderCheckpointStore"/>), <see cref="IJobStore"/> (<see cref="BlobJobStore"/>), the models' work
    /// queues (<see cref="IWorkQueues"/>, <see cref="LocalWorkQueues"/>) and the <see cref="ControlQueues"/> (<see cref="SqliteWorkQueue"/>s in its
    /// <c>queue.db</c>), with this container's <see cref="ReceiverLease"/>; <see cref="TimeProvider.System"/> unless a
    /// clock is registered. Any number of processes may use one folder at once.
    /// </summary>
    public static IServiceCollection AddLocalTransport(this IServiceCollection services, string dataPath, Action<LocalTransportOptions>? configure = null)
    {
        var options = new LocalTransportOptions();
        configure?.Invoke(options);
        options.Validate();
        var folder = new LocalDataFolder(dataPath);
        services.AddSingleton(folder);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(_ => ReceiverLease.Take(folder.ReceiversPath));
        services.AddSingleton<IBlobStore>(new FolderBlobStore(new FolderBlobStoreOptions { RootPath = folder.BlobsPath, FlushToDisk = options.FlushToDisk, OwnerOnly = true }));
        services.AddSingleton<ICheckpointStore>(new FolderCheckpointStore(new FolderCheckpointStoreOptions { RootPath = folder.CheckpointsPath, FlushToDisk = options.FlushToDisk }));
        services.AddSingleton<IJobStore>(sp => new BlobJobStore(sp.GetRequiredService<IBlobStore>()));
        services.AddSingleton(sp => new LocalWorkQueues(name => Queue(sp, folder, name, options.WorkLockDuration)));
        services.AddSingleton<IWorkQueues>(sp => sp.GetRequiredService<LocalWorkQueues>());
        services.AddSingleton(sp => new ControlQueues(
            Queue(sp, folder, LocalDataFolder.ShardDoneQueueName, options.ControlLockDuration),
            Queue(sp, folder, LocalDataFolder.WebhookQueueName, options.ControlLockDuration)));
        return services;
    }

    private static SqliteWorkQueue Queue(IServiceProvider services, LocalDataFolder folder, string name, TimeSpan lockDuration) => new(
        new SqliteWorkQueueOptions
        {
            DatabasePath = folder.QueueDatabase, QueueName = name, LockDuration = lockDuration, Lease = services.GetRequiredService<ReceiverLease>(),
        },
        services.GetRequiredService<TimeProvider>());
}
