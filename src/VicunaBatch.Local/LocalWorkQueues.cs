using System.Collections.Concurrent;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local;

/// <summary>
/// The work queue of each model in a data folder's <c>queue.db</c> (<see cref="LocalDataFolder.WorkQueueNameOf"/>), made
/// at first use; every process on the folder, whatever models it serves, reaches every model's queue.
/// </summary>
public sealed class LocalWorkQueues(Func<string, SqliteWorkQueue> open) : IWorkQueues
{
    private readonly ConcurrentDictionary<string, SqliteWorkQueue> _queues = new(StringComparer.Ordinal);

    public IWorkQueue Of(string model) => Queue(LocalDataFolder.WorkQueueNameOf(model));

    /// <summary>
    /// Moves the shards a version from before models had queues left in its one work queue to <paramref name="model"/>'s
    /// (that version served one model: the default carries on); their ids go along, so a shard is never run twice.
    /// Returns how many moved. Run by the host that owns the folder, before its workers start.
    /// </summary>
    public async Task<int> MoveUnnamedShardsAsync(string model, CancellationToken cancellationToken = default)
    {
        var legacy = Queue(LocalDataFolder.UnnamedWorkQueueName);
        var target = Of(model);
        int moved = 0;
        IReadOnlyList<ReceivedMessage> batch;
        while ((batch = await legacy.ReceiveAsync(64, cancellationToken)).Count > 0)
        {
            await target.SendAsync([.. batch.Select(m => new OutgoingMessage(m.MessageId, m.Body))], cancellationToken);
            foreach (var message in batch) await legacy.CompleteAsync(message, cancellationToken);
            moved += batch.Count;
        }
        return moved;
    }

    private SqliteWorkQueue Queue(string name) => _queues.GetOrAdd(name, open);
}
