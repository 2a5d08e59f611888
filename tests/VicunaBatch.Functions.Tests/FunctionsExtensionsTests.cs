using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Functions.Tests;

/// <summary>The wiring with the settings infra/bicep gives the Function App (nothing here talks to Azure: clients connect lazily).</summary>
public sealed class FunctionsExtensionsTests
{
    private static IConfiguration Configuration(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

    private static Dictionary<string, string?> AzureSettings() => new()
    {
        ["Storage:blobServiceUri"] = "https://acct.blob.core.windows.net", ["Storage:queueServiceUri"] = "https://acct.queue.core.windows.net",
        ["ServiceBus:fullyQualifiedNamespace"] = "ns.servicebus.windows.net",
        ["Api:Keys"] = "key-one-0001,key-two-0002",
        ["Models:Served"] = "vicuna-13b,vicuna-7b",
        ["ServiceBus:ModelQueuePrefix"] = "work-",
        ["Api:TenantKey"] = Convert.ToHexStringLower(new byte[32]),
        ["Webhooks:SigningSecret"] = "whsec_" + Convert.ToBase64String(new byte[32]),
    };

    [Theory]
    [InlineData("Api:Keys", "Api__Keys")]
    [InlineData("Api:TenantKey", "Api__TenantKey")]
    [InlineData("Webhooks:SigningSecret", "Webhooks__SigningSecret")]
    public void AddVicunaBatchFunctions_requiredSettingMissing_throwsNamingIt(string key, string appSetting)
    {
        var settings = AzureSettings();
        settings.Remove(key);

        var e = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddVicunaBatchFunctions(Configuration(settings)));

        Assert.Contains(appSetting, e.Message);
    }

    [Theory]
    [InlineData("Api:Keys")]
    [InlineData("Api:TenantKey")]
    [InlineData("Webhooks:SigningSecret")]
    public void AddVicunaBatchFunctions_unresolvedKeyVaultReference_throwsInsteadOfUsingItsText(string key)
    {
        var settings = AzureSettings();
        settings[key] = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/missing/)";

        var e = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddVicunaBatchFunctions(Configuration(settings)));

        Assert.Contains("unresolved Key Vault reference", e.Message);
    }

    [Fact]
    public void AddVicunaBatchFunctions_tenantKeyShorterThan32Characters_throwsNamingIt()
    {
        var settings = AzureSettings();
        settings["Api:TenantKey"] = "too-short-a-tenant-key";

        var e = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddVicunaBatchFunctions(Configuration(settings)));

        Assert.Equal("Api__TenantKey must be at least 32 characters (e.g. openssl rand -hex 32)", e.Message);
    }

    [Fact]
    public void AddVicunaBatchFunctions_retryScheduleAsLongAsThePoisonLimit_throws()
    {
        var settings = AzureSettings();
        settings["Webhooks:RetryDelays"] = string.Join(',', Enumerable.Repeat("00:01:00", FunctionsOptions.HostMaxDequeueCount - 1));

        var e = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddVicunaBatchFunctions(Configuration(settings)));

        Assert.Contains("maxDequeueCount", e.Message);
    }

    [Fact]
    public async Task AddVicunaBatchFunctions_theAppSettingsOfInfra_resolveEveryFunctionWithTheirNames()
    {
        var settings = AzureSettings();
        settings["Storage:Queues:ShardDone"] = "done-events";
        settings["Input:RequestsPerShard"] = "16";
        var services = new ServiceCollection().AddLogging().AddVicunaBatchFunctions(Configuration(settings));
        await using var provider = services.BuildServiceProvider();

        foreach (var type in new[] { typeof(ApiFunctions), typeof(FinalizerFunction), typeof(DelivererFunction), typeof(SweepFunction), typeof(FileSweepFunction), typeof(InboxFunction) })
            Assert.NotNull(ActivatorUtilities.CreateInstance(provider, type));
        Assert.Equal("done-events", provider.GetRequiredService<Azure.ControlPlaneQueues>().ShardDone.Name);
        Assert.Equal(16, provider.GetRequiredService<InputOptions>().RequestsPerShard);
        var queues = Assert.IsType<Azure.ServiceBusWorkQueues>(provider.GetRequiredService<IWorkQueues>()); // the Api sends shards to Service Bus
        Assert.Equal(["work-vicuna-13b", "work-vicuna-7b"], new[] { "vicuna-13b", "vicuna-7b" }.Select(queues.QueueNameOf)); // a queue per model
        Assert.Equal(["vicuna-13b", "vicuna-7b"], provider.GetRequiredService<ServedModels>().Names);
    }

    [Fact]
    public async Task AddVicunaBatchFunctions_blobServiceUriOfInfra_givesTheInboxTriggerItsAccountAndContainer()
    {
        var settings = AzureSettings();
        settings["Storage:blobServiceUri"] = "https://stvicunadevab12cd.blob.core.windows.net/"; // the account's primaryEndpoints.blob
        settings["Storage:Containers:Inbox"] = "drop-box";
        await using var provider = new ServiceCollection().AddLogging().AddVicunaBatchFunctions(Configuration(settings)).BuildServiceProvider();

        var address = provider.GetRequiredService<InboxAddress>();

        Assert.Equal(("stvicunadevab12cd", "drop-box"), (address.AccountName, address.ContainerName));
        Assert.Equal("daily/p 1.jsonl", address.BlobNameOf(new Uri("https://stvicunadevab12cd.blob.core.windows.net/drop-box/daily/p%201.jsonl")));
        Assert.Null(address.BlobNameOf(new Uri("https://stvicunadevab12cd.blob.core.windows.net/jobs/daily/p.jsonl")));
        Assert.Null(address.BlobNameOf(new Uri("https://other.blob.core.windows.net/drop-box/daily/p.jsonl")));
    }
}
