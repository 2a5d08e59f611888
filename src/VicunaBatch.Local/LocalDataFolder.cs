using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Local;

/// <summary>
/// The layout of a local data folder, the one place it is written out. Every one-machine host uses it: <c>serve
/// --data</c>, the state folder of <c>run</c> and <c>pipeline run</c> (<c>OUT/.state</c>), <c>vicuna-worker</c> with
/// <c>Local:DataPath</c>. <c>queue.db</c> holds the work queue (<see cref="WorkQueueName"/>) and the control queues
/// (<see cref="ShardDoneQueueName"/>, <see cref="WebhookQueueName"/>); then <c>blobs/</c>, <c>checkpoints/</c>,
/// <c>receivers/</c> (the processes' leases, <see cref="ReceiverLease"/>), <c>webhook_secret</c>, and the lock files
/// of hosts that must be alone on the folder (<see cref="TryTakeExclusive"/>).
/// </summary>
public sealed class LocalDataFolder
{
    public const string WorkQueueName = "shards";
    public const string ShardDoneQueueName = "shard-done";
    public const string WebhookQueueName = "webhooks";

    /// <summary>The folder (made if missing).</summary>
    public LocalDataFolder(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string QueueDatabase => Combine("queue.db");

    public string BlobsPath => Combine("blobs");

    public string CheckpointsPath => Combine("checkpoints");

    public string ReceiversPath => Combine("receivers");

    /// <summary>The <c>whsec_…</c> secret that signs this folder's webhooks when a job has none of its own.</summary>
    public string SigningSecretPath => Combine("webhook_secret");

    /// <summary>The signing secret, generated into <see cref="SigningSecretPath"/> the first time. Never log it.</summary>
    public string SigningSecret()
    {
        if (!File.Exists(SigningSecretPath))
        {
            try
            {
                using var file = new FileStream(SigningSecretPath, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                file.Write(System.Text.Encoding.UTF8.GetBytes(WebhookSigner.GenerateSecret()));
            }
            catch (IOException) when (File.Exists(SigningSecretPath)) { } // another process made it first
        }
        return File.ReadAllText(SigningSecretPath).Trim();
    }

    /// <summary>
    /// Holds <c>{name}.lock</c> in the folder for as long as the returned stream is open (a host that must be alone
    /// here: one <c>serve</c> per data folder, one <c>run</c> per state folder); null when another process holds it.
    /// </summary>
    public FileStream? TryTakeExclusive(string name)
    {
        try { return new FileStream(LockPath(name), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException) { return null; }
    }

    public string LockPath(string name) => Combine(name + ".lock");

    public override string ToString() => Path;

    private string Combine(string name) => System.IO.Path.Combine(Path, name);
}
