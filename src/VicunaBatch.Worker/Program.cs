// vicuna-worker: drains the work queue into one engine (see WorkerService); /healthz on Worker:HealthUrls.
await using var app = VicunaBatch.Worker.WorkerHost.Build(args);
await app.RunAsync();
