using System.Diagnostics;
using Azure.Storage.Blobs;
using VicunaBatch.Azure;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

// ColdStartBench upload CONNECTION_STRING FOLDER_URI DIR   uploads a package folder's files under FOLDER_URI
// ColdStartBench blob CONNECTION_STRING FOLDER_URI         reads the package into memory, opens it, generates one token
// ColdStartBench dir DIR                                   opens the package folder, generates one token
// ColdStartBench memory DIR                                reads the folder's files into memory (no blobs), opens them from there
// Times are from the process's start (the kernel's, so the runtime's own start counts); one engine of one slot, on the
// CPU, or on the GPU with COLDSTART_DEVICE=cuda (the CUDA build of ONNX Runtime: scripts/gpu/coldstart-13b.sh).
var started = Process.GetCurrentProcess().StartTime.ToUniversalTime();
double Since() => (DateTime.UtcNow - started).TotalSeconds;
static long PeakResident() => long.Parse(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmHWM:")).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) << 10;

if (args[0] == "upload")
{
    var source = BlobModelSource.From(new BlobServiceClient(args[1]), new Uri(args[2]));
    var container = new BlobServiceClient(args[1]).GetBlobContainerClient(new BlobUriBuilder(new Uri(args[2])).BlobContainerName);
    await container.CreateIfNotExistsAsync();
    foreach (var file in Directory.GetFiles(args[3]))
        await container.GetBlobClient(source.Prefix + Path.GetFileName(file)).UploadAsync(file, overwrite: true);
    Console.WriteLine($"uploaded {Directory.GetFiles(args[3]).Length} files to {args[2]}");
    return;
}

var atMain = Since();
PackageFiles files;
long numBytes;
if (args[0] == "blob")
{
    var source = BlobModelSource.From(new BlobServiceClient(args[1]), new Uri(args[2]));
    var (read, summary) = await new BlobPackageReader(source.Store, source.Prefix, args[2]).ReadAsync();
    files = read;
    numBytes = summary.NumBytes;
    Console.WriteLine($"blob -> memory   {summary.NumBytes / 1e6,10:F1} MB in {summary.NumReads} ranged reads: {summary.Elapsed.TotalSeconds,7:F2} s, {summary.BytesPerSecond / 1e6,8:F0} MB/s");
}
else if (args[0] == "memory")
{
    var readStarted = Stopwatch.GetTimestamp();
    var buffers = new Dictionary<string, PackageFileBuffer>();
    foreach (var file in Directory.GetFiles(args[1]))
    {
        var buffer = buffers[Path.GetFileName(file)] = new PackageFileBuffer(new FileInfo(file).Length);
        using var source = File.OpenRead(file);
        using var target = buffer.OpenWrite(0, buffer.NumBytes);
        source.CopyTo(target, 1 << 20);
    }
    files = PackageFiles.InMemory(args[1], buffers);
    numBytes = buffers.Values.Sum(b => b.NumBytes);
    Console.WriteLine($"disk -> memory   {numBytes / 1e6,10:F1} MB: {Stopwatch.GetElapsedTime(readStarted).TotalSeconds,7:F2} s");
}
else
{
    files = PackageFiles.InDirectory(args[1]);
    numBytes = Directory.GetFiles(args[1]).Sum(f => new FileInfo(f).Length);
}
var beforeOpen = Stopwatch.GetTimestamp();
var device = Environment.GetEnvironmentVariable("COLDSTART_DEVICE") == "cuda" ? ExecutionDevice.Cuda : ExecutionDevice.Cpu;
using var model = LoadedModel.Open(files, new EngineOptions { MaxBatchSize = 1, MaxSequenceLength = 64, MaxScheduledTokens = 16, Device = device });
var open = Stopwatch.GetElapsedTime(beforeOpen).TotalSeconds;
Console.WriteLine($"{(args[0] == "dir" ? "disk  " : "memory")} -> session {numBytes / 1e6,10:F1} MB: {open,7:F2} s, {numBytes / 1e6 / open,8:F0} MB/s");
var beforeToken = Stopwatch.GetTimestamp();
model.Engine.Submit(new GenerationRequest("p", [1, 15, 300, 500], 1));
while (model.Engine.HasWork) model.Engine.Step();
Console.WriteLine($"first token      {Stopwatch.GetElapsedTime(beforeToken).TotalSeconds,7:F2} s after the session");
Console.WriteLine($"process start -> Main {atMain:F2} s, -> first token {Since():F2} s; peak resident {PeakResident() / 1e9:F2} GB");
