using System.Net;
using System.Net.Sockets;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Local.Tests.Webhooks;

/// <summary>A name whose answer changes (DNS rebinding): each lookup takes the next answer, the last one repeats.</summary>
internal sealed class RebindingResolver(params IPAddress[] answers) : IHostResolver
{
    private int _numLookups;

    public int NumLookups => _numLookups;

    public Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken = default)
    {
        int n = Interlocked.Increment(ref _numLookups);
        return Task.FromResult<IReadOnlyList<IPAddress>>([answers[Math.Min(n, answers.Length) - 1]]);
    }
}

/// <summary>Issue 22, item 3: the address checked is the address connected to. The "public" answer is never connected
/// to: every lookup that could lead to a connect answers 127.0.0.1, refused here (AllowLoopback off), where a
/// raw TCP listener tells whether anything arrived.</summary>
public sealed class WebhookRebindingTests
{
    private static readonly IPAddress Public = IPAddress.Parse("93.184.216.34");

    [Fact]
    public async Task DeliverAsync_nameRebindsToLoopbackBetweenTheCheckAndTheConnect_refusedAtConnectAndRecordedRejected()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var resolver = new RebindingResolver(Public, Public, IPAddress.Loopback); // create, delivery check, connect
        using var rig = new WebhookRig(allowLoopback: false, resolver: resolver);
        var url = $"http://rebind.test:{((IPEndPoint)listener.LocalEndpoint).Port}/hooks";
        await new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowHttp = true }, resolver).ValidateAsync(url); // at create: allowed
        await rig.Enqueuer.EnqueueAsync(WebhookRig.CompletedJob(url));

        var attempt = await rig.Deliverer.DeliverAsync((await rig.Outbox.ReceiveAsync(1)).Single());
        bool connected = listener.Pending();
        listener.Stop();

        Assert.Equal(3, resolver.NumLookups);
        Assert.False(connected);
        Assert.Equal((WebhookAttemptOutcome.Rejected, (int?)null), (attempt!.Outcome, attempt.StatusCode));
        Assert.Equal("url_loopback: refused at connect: webhook host \"rebind.test\" is 127.0.0.1, in 127.0.0.0/8 loopback; "
            + "allowed only with AllowLoopback", attempt.Error);
        Assert.Equal([WebhookAttemptOutcome.Rejected], (await rig.Log.ReadAsync("batch_hook1")).Select(a => a.Outcome));
        Assert.Equal(0, await rig.Outbox.CountAsync());
    }

    [Fact]
    public async Task DeliverAsync_nameRebindsToPrivateAfterCreate_rejectedBeforeAnyConnect()
    {
        var resolver = new RebindingResolver(Public, IPAddress.Parse("10.1.2.3"));
        using var rig = new WebhookRig(allowLoopback: false, resolver: resolver);
        const string url = "https://rebind.test/hooks";
        await new WebhookUrlPolicy(new WebhookUrlPolicyOptions(), resolver).ValidateAsync(url);
        await rig.Enqueuer.EnqueueAsync(WebhookRig.CompletedJob(url));

        var attempt = await rig.Deliverer.DeliverAsync((await rig.Outbox.ReceiveAsync(1)).Single());

        Assert.Equal(2, resolver.NumLookups); // create and the delivery check: no connect
        Assert.Equal(WebhookAttemptOutcome.Rejected, attempt!.Outcome);
        Assert.Equal("url_private_network: webhook host \"rebind.test\" is 10.1.2.3, in 10.0.0.0/8 private use; "
            + "allowed only with AllowPrivateNetworks", attempt.Error);
    }

    [Fact]
    public async Task CreateHandler_nameResolvesToARefusedAddressAfterValidation_connectRefusedWithTheReason()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var resolver = new RebindingResolver(Public, IPAddress.Loopback);
        var policy = new WebhookUrlPolicy(new WebhookUrlPolicyOptions { AllowHttp = true }, resolver);
        var url = $"http://rebind.test:{((IPEndPoint)listener.LocalEndpoint).Port}/hooks";
        await policy.ValidateAsync(url);
        using var http = new HttpClient(WebhookHttp.CreateHandler(policy));

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => http.PostAsync(url, new StringContent("{}")));
        bool connected = listener.Pending();
        listener.Stop();

        Assert.False(connected);
        Assert.Equal(HttpRequestError.ConnectionError, e.HttpRequestError);
        Assert.Equal(WebhookUrlRejection.Loopback, Assert.IsType<WebhookUrlException>(e.InnerException).Reason);
    }
}
