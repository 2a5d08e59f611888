using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VicunaBatch.Core;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Execution;
using VicunaBatch.Local;

namespace VicunaBatch.Cli;

/// <summary>
/// The composition of the one-machine hosts (<c>run</c>, <c>pipeline run</c>, <c>serve</c>): the local transport over a
/// data folder, Core, and the engine chain's ports — the same parts and wiring as <c>vicuna-worker</c> and the
/// Functions app, on SQLite and folders.
/// </summary>
internal static class OneMachine
{
    /// <param name="models">The names of the models served, the default first; each one's worker is the host's to start.</param>
    /// <param name="webhooks">The deliverer's signing secret and schedule; null: a host that delivers none.</param>
    public static IServiceCollection AddOneMachine(this IServiceCollection services, string dataPath, InputOptions input, IReadOnlyList<string> models,
        WebhookDelivererOptions? webhooks = null)
    {
        services.AddLocalTransport(dataPath);
        services.AddVicunaBatchCore(core =>
        {
            core.Input = input;
            core.Models = models;
            core.Webhooks = webhooks;
            // the local server may call back to a receiver on this machine
            core.WebhookUrls = new WebhookUrlPolicyOptions { AllowHttp = true, AllowLoopback = true };
            core.ShardDone = new Core.ControlPlane.ShardDoneHandlerOptions { PollInterval = ControlPollInterval };
        });
        return services;
    }

    /// <summary>The one-machine parts of a command that is no server (<c>run</c>, <c>pipeline run</c>), disposed with the command.</summary>
    public static ServiceProvider Build(string dataPath, InputOptions input, IReadOnlyList<string> models, TimeProvider time, WebhookDelivererOptions? webhooks = null) =>
        new ServiceCollection().AddSingleton(time).AddOneMachine(dataPath, input, models, webhooks).BuildServiceProvider();

    /// <summary>
    /// How long the control plane's loops wait on an empty queue: its events come from this process (which wakes them
    /// at once) or from workers in others, which it sees this late at most.
    /// </summary>
    public static readonly TimeSpan ControlPollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// One loop of a server as a hosted service, run until the host stops. Registered as one more
    /// <see cref="IHostedService"/> each time: <c>AddHostedService</c> with a factory keeps only the first registration
    /// of an implementation type, so a second loop of the same type would silently never run.
    /// </summary>
    public static IServiceCollection AddLoop(this IServiceCollection services, Func<IServiceProvider, Func<CancellationToken, Task>> loop) =>
        services.AddSingleton<IHostedService>(sp => new Loop(loop(sp)));

    private sealed class Loop(Func<CancellationToken, Task> run) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => run(stoppingToken);
    }
}
