using VicunaBatch.Testing;

namespace VicunaBatch.Azure.Tests;

/// <summary><see cref="BlobModelDownload"/> against a real Azurite: a model package folder uploaded as the README says
/// (<c>az storage blob upload-batch -d models --destination-path NAME</c>) comes back byte for byte, once.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobModelDownloadTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _local = Path.Combine(Path.GetTempPath(), "vicuna-model-download", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task EnsureAsync_copies_every_file_of_the_package_then_uses_the_local_copy()
    {
        var (sourceUri, package) = await UploadTinyAsync();
        var target = Path.Combine(_local, "tiny");
        var download = BlobModelDownload.From(azurite.Blobs, sourceUri, target);

        var bytes = await download.EnsureAsync();

        var expected = Directory.GetFiles(package).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(expected, Directory.GetFiles(target).Select(Path.GetFileName).Order().ToList());
        foreach (var name in expected) Assert.Equal(File.ReadAllBytes(Path.Combine(package, name!)), File.ReadAllBytes(Path.Combine(target, name!)));
        Assert.Equal(Directory.GetFiles(package).Sum(f => new FileInfo(f).Length), bytes);
        Assert.False(Directory.Exists(target + ".partial"));
        Assert.Equal(0, await download.EnsureAsync()); // already there: nothing copied
    }

    [Fact]
    public async Task EnsureAsync_replaces_a_partial_copy_left_by_a_killed_worker_and_an_empty_mount_point()
    {
        var (sourceUri, _) = await UploadTinyAsync();
        var target = Path.Combine(_local, "tiny");
        Directory.CreateDirectory(target);
        Directory.CreateDirectory(target + ".partial");
        File.WriteAllText(Path.Combine(target + ".partial", "model.onnx"), "half");

        await BlobModelDownload.From(azurite.Blobs, sourceUri, target).EnsureAsync();

        Assert.True(File.Exists(Path.Combine(target, "genai_config.json")));
        Assert.NotEqual("half", File.ReadAllText(Path.Combine(target, "model.onnx"))[..4]);
    }

    [Fact]
    public async Task EnsureAsync_without_a_package_at_the_source_says_what_it_found()
    {
        var container = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("models"));
        await container.CreateAsync();
        await container.GetBlobClient("other/readme.txt").UploadAsync(BinaryData.FromString("x"));
        var download = BlobModelDownload.From(azurite.Blobs, new Uri(container.Uri + "/other"), Path.Combine(_local, "other"));

        var error = await Assert.ThrowsAsync<FileNotFoundException>(() => download.EnsureAsync());
        Assert.Contains("1 blobs there, none is genai_config.json", error.Message);
        Assert.False(Directory.Exists(Path.Combine(_local, "other")));
    }

    private async Task<(Uri SourceUri, string Package)> UploadTinyAsync()
    {
        var package = Path.Combine(Checkout.Root, "models", "tiny");
        var container = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("models"));
        await container.CreateAsync();
        foreach (var file in Directory.GetFiles(package))
            await container.GetBlobClient($"tiny/{Path.GetFileName(file)}").UploadAsync(file);
        await container.GetBlobClient("tiny-other/genai_config.json").UploadAsync(BinaryData.FromString("{}")); // a sibling package is not copied
        return (new Uri(container.Uri + "/tiny"), package);
    }

    public void Dispose()
    {
        try { Directory.Delete(_local, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
