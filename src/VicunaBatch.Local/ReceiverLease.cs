namespace VicunaBatch.Local;

/// <summary>
/// A process's claim on the locks it takes in a data folder's queues: the file <c>receivers/{id}.lock</c>, held open
/// and locked for as long as the lease is (the process's lifetime, at most). A queue lock whose receiver's file another
/// process can lock belongs to a process that died, so the queue releases it at once instead of after its lock
/// duration: a killed <c>run</c>, <c>serve</c> or <c>vicuna-worker</c> leaves nothing locked for the next one, and any
/// number of live processes share one folder without releasing each other's locks.
/// </summary>
public sealed class ReceiverLease : IDisposable
{
    private readonly FileStream _file;

    private ReceiverLease(string folder, string id, FileStream file) => (Folder, Id, _file) = (folder, id, file);

    /// <summary>The folder of the leases (<c>receivers/</c> of a data folder).</summary>
    public string Folder { get; }

    public string Id { get; }

    public static ReceiverLease Take(string folder)
    {
        Directory.CreateDirectory(folder);
        var id = Guid.NewGuid().ToString("N");
        return new ReceiverLease(folder, id, new FileStream(PathOf(folder, id), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None));
    }

    /// <summary>
    /// Whether the receiver <paramref name="id"/> still lives: its file is locked by its process. A lease that is not
    /// held (its process died, or its file is gone) is cleaned up here.
    /// </summary>
    public static bool IsHeld(string folder, string id)
    {
        if (id.Length == 0 || !id.All(char.IsAsciiHexDigit)) return false; // not an id this class made
        var path = PathOf(folder, id);
        try
        {
            using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) { }
        }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
        catch (IOException) { return true; } // locked: its process holds it
        File.Delete(path);
        return false;
    }

    public void Dispose()
    {
        _file.Dispose();
        File.Delete(PathOf(Folder, Id));
    }

    private static string PathOf(string folder, string id) => Path.Combine(folder, id + ".lock");
}
