using System.Security.Cryptography;
using System.Text;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Local;

/// <summary>
/// The layout of a local data folder, the one place it is written out. Every one-machine host uses it: <c>serve
/// --data</c>, the state folder of <c>run</c> and <c>pipeline run</c> (<c>OUT/.state</c>), <c>vicuna-worker</c> with
/// <c>Local:DataPath</c>. <c>queue.db</c> holds the work queue of each model (<see cref="WorkQueueNameOf"/>) and the control queues
/// (<see cref="ShardDoneQueueName"/>, <see cref="WebhookQueueName"/>); then <c>blobs/</c>, <c>checkpoints/</c>,
/// <c>receivers/</c> (the processes' leases, <see cref="ReceiverLease"/>), <c>webhook_secret</c>, <c>tenant_key</c>, and the lock files
/// of hosts that must be alone on the folder (<see cref="TryTakeExclusive"/>). The folder is its user's alone: 0700,
/// its secret files and the blob store's files 0600 from their creation (<see cref="OwnerOnly"/>; Unix modes, none on Windows).
/// </summary>
public sealed class LocalDataFolder
{
    /// <summary>The work queue of <paramref name="model"/>'s shards (<see cref="LocalWorkQueues"/>).</summary>
    public static string WorkQueueNameOf(string model) => $"{UnnamedWorkQueueName}/{model}";

    /// <summary>The one work queue of versions from before models were named (<see cref="LocalWorkQueues.MoveUnnamedShardsAsync"/>).</summary>
    public const string UnnamedWorkQueueName = "shards";

    public const string ShardDoneQueueName = "shard-done";
    public const string WebhookQueueName = "webhooks";

    /// <summary>
    /// The folder, made 0700 if missing (<see cref="OwnerOnly"/>; the folders above it, a run's OUT say, are the user's
    /// and get the umask's modes). An existing folder keeps its mode, which may be a choice of its user
    /// (<see cref="OpenToOthers"/> tells), but the secret files and the stores in it, made by an earlier version with the
    /// umask's modes, are made private.
    /// </summary>
    public LocalDataFolder(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        if (System.IO.Path.GetDirectoryName(Path) is { } parent) Directory.CreateDirectory(parent);
        OwnerOnly.CreateFolder(Path);
        foreach (var own in new[] { BlobsPath, CheckpointsPath, SigningSecretPath, TenantKeyPath }) OwnerOnly.Tighten(own);
    }

    public string Path { get; }

    public string QueueDatabase => Combine("queue.db");

    public string BlobsPath => Combine("blobs");

    public string CheckpointsPath => Combine("checkpoints");

    public string ReceiversPath => Combine("receivers");

    /// <summary>The <c>whsec_…</c> secret that signs this folder's webhooks when a job has none of its own.</summary>
    public string SigningSecretPath => Combine("webhook_secret");

    /// <summary>The signing secret, generated into <see cref="SigningSecretPath"/> the first time. Never log it.</summary>
    public string SigningSecret() => ReadOrCreateSecret(SigningSecretPath, () => WebhookSigner.GenerateSecret());

    /// <summary>The installation key of this folder's tenant ids: <c>tenant_key</c>, 0600.</summary>
    public string TenantKeyPath => Combine("tenant_key");

    /// <summary>
    /// The installation key that tenant ids are keyed with (HMAC-SHA256 of each API key; the Api's <c>TenantIds</c>): 64
    /// hex digits of 32 random bytes, generated into <see cref="TenantKeyPath"/> the first time. Never log it, and never
    /// change it: the tenants' batches and files are stored under the ids it made.
    /// </summary>
    public string TenantKey() => ReadOrCreateSecret(TenantKeyPath, () => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));

    /// <summary>The mode as <c>chmod</c> writes it ("755") when other users may read or enter the folder; null when it is its user's alone.</summary>
    public string? OpenToOthers => OwnerOnly.OpenToOthers(Path);

    /// <summary>
    /// The secret in <paramref name="path"/>, made by <paramref name="generate"/> the first time: written to a temporary
    /// file created 0600 and linked into place unless another process made it first, so no process reads half of one,
    /// and whoever made it, every process reads the same.
    /// </summary>
    private static string ReadOrCreateSecret(string path, Func<string> generate)
    {
        if (!File.Exists(path))
        {
            var temp = $"{path}.{Guid.NewGuid():N}.tmp";
            try
            {
                using (var file = new FileStream(temp, OwnerOnly.StreamOptions(FileMode.CreateNew, FileAccess.Write, FileShare.None)))
                {
                    file.Write(Encoding.UTF8.GetBytes(generate()));
                    file.Flush(flushToDisk: true);
                }
                try { File.Move(temp, path, overwrite: false); }
                catch (IOException) when (File.Exists(path)) { } // another process made it first
            }
            finally
            {
                File.Delete(temp);
            }
        }
        return File.ReadAllText(path).Trim();
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
