using System.Text;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// A data folder is its user's alone (issue 22, item 7): made 0700, its secret files 0600 from their creation, the
/// blob store's files 0600 in 0700 folders; the folders above it (a run's OUT) keep the modes of the user's umask.
/// </summary>
public sealed class LocalDataFolderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [UnixFact]
    public void A_new_data_folder_is_made_0700_and_the_folders_above_it_with_the_usual_modes()
    {
        var data = new LocalDataFolder(Path.Combine(_folder.Path, "out", ".state"));

        Assert.Equal("700", UnixModes.Of(data.Path));
        Assert.Null(data.OpenToOthers);
        Assert.Equal(UnixModes.OfNewFolder(), UnixModes.Of(_folder.Combine("out")));
    }

    [UnixFact]
    public void The_signing_secret_is_0600_and_no_temporary_file_is_left_beside_it()
    {
        var data = new LocalDataFolder(_folder.Combine("data"));

        var secret = data.SigningSecret();

        Assert.StartsWith("whsec_", secret);
        Assert.Equal("600", UnixModes.Of(data.SigningSecretPath));
        Assert.Equal(secret, new LocalDataFolder(data.Path).SigningSecret());
        Assert.Equal(["webhook_secret"], Directory.EnumerateFileSystemEntries(data.Path).Select(Path.GetFileName));
    }

    [UnixFact]
    public void An_existing_folder_keeps_its_mode_and_its_secret_file_and_stores_are_made_private()
    {
        // as an earlier version left it: 0755 folders, a 0644 secret
        var path = _folder.Combine("data");
        Directory.CreateDirectory(Path.Combine(path, "blobs", "jobs"));
        Directory.CreateDirectory(Path.Combine(path, "checkpoints"));
        File.WriteAllText(Path.Combine(path, "webhook_secret"), "whsec_" + Convert.ToBase64String(new byte[32]));
        UnixModes.Set(path, "755");
        UnixModes.Set(Path.Combine(path, "blobs"), "755");
        UnixModes.Set(Path.Combine(path, "checkpoints"), "755");
        UnixModes.Set(Path.Combine(path, "webhook_secret"), "644");

        var data = new LocalDataFolder(path);
        data.SigningSecret();

        Assert.Equal("755", UnixModes.Of(path)); // the user's choice: never changed (serve says it is open)
        Assert.Equal("755", data.OpenToOthers);
        Assert.Equal("600", UnixModes.Of(data.SigningSecretPath));
        Assert.Equal("700", UnixModes.Of(data.BlobsPath));
        Assert.Equal("700", UnixModes.Of(data.CheckpointsPath));
    }

    [UnixFact]
    public async Task The_blob_store_of_a_data_folder_writes_0600_files_in_0700_folders()
    {
        var data = _folder.Combine("data");
        await using var services = new ServiceCollection().AddLocalTransport(data).BuildServiceProvider();
        var blobs = services.GetRequiredService<IBlobStore>();

        await blobs.PutBytesAsync("jobs/batch_1/webhook_secret", Encoding.UTF8.GetBytes("whsec_x"), BlobCondition.IfNotExists);
        await blobs.PutBytesAsync("jobs/batch_1/job.json", Encoding.UTF8.GetBytes("{}"), BlobCondition.None);

        foreach (var folder in new[] { "blobs", "blobs/.tmp", "blobs/jobs", "blobs/jobs/batch_1" })
            Assert.Equal(("700", folder), (UnixModes.Of(Path.Combine(data, folder)), folder));
        foreach (var file in new[] { "blobs/jobs/batch_1/webhook_secret", "blobs/jobs/batch_1/job.json" })
            Assert.Equal(("600", file), (UnixModes.Of(Path.Combine(data, file)), file));
    }
}
