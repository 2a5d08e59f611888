// vicuna-worker: drains the work queue into one engine a GPU (see WorkerService); /healthz on Worker:HealthUrls.
using Microsoft.Extensions.Options;
using VicunaBatch.Inference.Package;
using VicunaBatch.Worker;

try
{
    await using var app = WorkerHost.Build(args);
    await app.RunAsync();
    return Environment.ExitCode; // 1 when the worker failed (WorkerService sets it)
}
catch (Exception e) when (e is InvalidOperationException or ArgumentException or OptionsValidationException
    or ModelPackageException or NotSupportedException or FileNotFoundException or DirectoryNotFoundException)
{
    // a setting the worker cannot start with (no queue, an option out of range): one line that says which, and exit 2,
    // not an unhandled exception's stack trace and an abort
    Console.Error.WriteLine($"vicuna-worker: {WorkerHost.StartupError(e)}");
    return 2;
}
