namespace VicunaBatch.Infra.Tests;

/// <summary>No key, SAS or connection string anywhere: the services refuse local auth, and nothing in the
/// template reads a key or hands one to an app.</summary>
[Collection(BicepCollection.Name)]
public sealed class NoSecretsTests(BicepFixture bicep)
{
    // Application Insights' connection string carries only the ingestion endpoint and instrumentation key, and the
    // component has local auth disabled (asserted below): ingestion needs the app's Entra token.
    private const string AppInsightsSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";
    private static readonly string[] ForbiddenText =
        ["AccountKey=", "SharedAccessKey", "listKeys(", "listConnectionStrings(", "listCredentials(", "listSecrets(", "SharedAccessSignature"];

    [Fact]
    public void Template_never_reads_or_contains_a_key()
    {
        var text = bicep.Main.Json.ToJsonString();
        foreach (var forbidden in ForbiddenText)
            Assert.False(text.Contains(forbidden, StringComparison.OrdinalIgnoreCase), $"template contains {forbidden}");
    }

    [Fact]
    public void Outputs_name_no_connection_string_or_key()
    {
        foreach (var template in bicep.Main.SelfAndModules())
            foreach (var (name, output) in template.Json["outputs"]?.AsObject() ?? [])
            {
                var lower = name.ToLowerInvariant();
                if (lower == "appinsightsconnectionstring") continue; // module-internal, see AppInsightsSetting
                Assert.False(lower.Contains("connectionstring") || lower.EndsWith("key") || lower.EndsWith("keys") || lower.Contains("secret") || lower.Contains("password") || lower.Contains("sas"),
                    $"output {name}");
                Assert.NotEqual("securestring", ((string?)output!["type"])?.ToLowerInvariant());
            }
        Assert.DoesNotContain(bicep.Main.Json["outputs"]!.AsObject(), o => o.Key.Contains("onnection", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Function_app_settings_use_identity_based_connections_only()
    {
        var (functions, _) = bicep.Main.Module("functions");
        var settings = functions.Json["variables"]!["appSettings"]!.AsObject();
        foreach (var (name, value) in settings)
        {
            Assert.False(name.Contains("connectionstring", StringComparison.OrdinalIgnoreCase) && name != AppInsightsSetting, $"setting {name}");
            var text = value!.ToJsonString();
            foreach (var forbidden in ForbiddenText) Assert.DoesNotContain(forbidden, text);
        }
        Assert.DoesNotContain("AzureWebJobsStorage", settings.Select(s => s.Key)); // the connection-string form
        // host storage, the queue triggers' connection (FunctionsOptions.QueueTriggerConnection), Service Bus
        foreach (var connection in new[] { "AzureWebJobsStorage", "ControlQueues", "ServiceBus" })
        {
            Assert.Equal("[variables('identityConnection').credential]", (string?)settings[$"{connection}__credential"]);
            Assert.Equal("[variables('identityConnection').clientId]", (string?)settings[$"{connection}__clientId"]);
        }
        Assert.Equal("managedidentity", functions.Literal("[variables('identityConnection').credential]"));
        Assert.NotNull(settings["AzureWebJobsStorage__accountName"]);
        Assert.Equal("[parameters('queueEndpoint')]", (string?)settings["ControlQueues__queueServiceUri"]);
        // the app's own Storage section: its clients use DefaultAzureCredential with this client id; no "credential"
        // setting claims to configure what does not read it
        Assert.Equal("[variables('identityConnection').clientId]", (string?)settings["Storage__clientId"]);
        Assert.Null(settings["Storage__credential"]);
        Assert.NotNull(settings["ServiceBus__fullyQualifiedNamespace"]);

        var app = functions.OfType("Microsoft.Web/sites").Single().Resource["properties"]!;
        var runtime = app["functionAppConfig"]!["runtime"]!;
        Assert.Equal("dotnet-isolated", (string?)runtime["name"]);
        Assert.Equal("10.0", (string?)runtime["version"]);
        Assert.Equal("UserAssignedIdentity", (string?)app["functionAppConfig"]!["deployment"]!["storage"]!["authentication"]!["type"]);
        Assert.Equal("FC1", (string?)functions.OfType("Microsoft.Web/serverfarms").Single().Resource["sku"]!["name"]);
    }

    [Fact]
    public void Function_app_secrets_are_key_vault_references_the_app_resolves()
    {
        var (functions, _) = bicep.Main.Module("functions");
        var settings = functions.Json["variables"]!["appSettings"]!.AsObject();
        // the names VicunaBatch.Functions reads (FunctionsOptions); the values are references, never secrets
        Assert.StartsWith("[format('@Microsoft.KeyVault(SecretUri={0}secrets/api-keys/)'", (string?)settings["Api__Keys"]);
        Assert.StartsWith("[format('@Microsoft.KeyVault(SecretUri={0}secrets/api-tenant-key/)'", (string?)settings["Api__TenantKey"]);
        Assert.StartsWith("[format('@Microsoft.KeyVault(SecretUri={0}secrets/webhook-signing-secret/)'", (string?)settings["Webhooks__SigningSecret"]);
        var app = functions.OfType("Microsoft.Web/sites").Single().Resource["properties"]!;
        Assert.Equal("[parameters('identityId')]", (string?)app["keyVaultReferenceIdentity"]);
    }

    [Fact]
    public void Worker_environment_carries_no_secret()
    {
        var (workers, _) = bicep.Main.Module("workers");
        var env = workers.Json["variables"]!["commonEnv"]!.AsArray();
        foreach (var variable in env)
        {
            var name = (string)variable!["name"]!;
            Assert.Null(variable["secretRef"]);
            Assert.False(name.Contains("connectionstring", StringComparison.OrdinalIgnoreCase) && name != AppInsightsSetting, $"env {name}");
        }
        Assert.Contains(env, v => (string?)v!["name"] == "AZURE_CLIENT_ID");
    }

    [Fact]
    public void Service_bus_storage_and_monitoring_refuse_local_auth()
    {
        var serviceBus = bicep.Main.Module("servicebus").Template.OfType("Microsoft.ServiceBus/namespaces").Single().Resource["properties"]!;
        Assert.True((bool)serviceBus["disableLocalAuth"]!);

        var storage = bicep.Main.Module("storage").Template.OfType("Microsoft.Storage/storageAccounts").Single().Resource["properties"]!;
        Assert.False((bool)storage["allowSharedKeyAccess"]!);
        Assert.True((bool)storage["supportsHttpsTrafficOnly"]!);
        Assert.Equal("TLS1_2", (string?)storage["minimumTlsVersion"]);
        Assert.False((bool)storage["allowBlobPublicAccess"]!);

        var monitoring = bicep.Main.Module("monitoring").Template;
        Assert.True((bool)monitoring.OfType("Microsoft.Insights/components").Single().Resource["properties"]!["DisableLocalAuth"]!);

        var vault = bicep.Main.Module("keyvault").Template.OfType("Microsoft.KeyVault/vaults").Single().Resource["properties"]!;
        Assert.True((bool)vault["enableRbacAuthorization"]!);

        var registry = bicep.Main.Module("registry").Template.OfType("Microsoft.ContainerRegistry/registries").Single().Resource["properties"]!;
        Assert.False((bool)registry["adminUserEnabled"]!);
    }

    [Fact]
    public void Storage_has_the_containers_and_control_plane_queues()
    {
        var (_, parameters) = bicep.Main.Module("storage");
        var containers = parameters["containerNames"]!["value"]!.AsArray().Select(c => bicep.Main.Literal((string)c!)).ToArray();
        Assert.Subset(containers.ToHashSet(), new HashSet<string> { "inputs", "results", "jobs", "inbox", "pipelines", "models" });
        var queues = parameters["queueNames"]!["value"]!.AsArray().Select(q => (string)q!).ToArray();
        Assert.Equal(6, queues.Length);
        Assert.Contains("[variables('shardDoneQueueName')]", queues);
        Assert.Contains("[variables('webhookQueueName')]", queues);
        Assert.Contains("[format('{0}-poison', variables('shardDoneQueueName'))]", queues);
        Assert.Contains("[format('{0}-poison', variables('webhookQueueName'))]", queues);
        Assert.Contains("[variables('inboxEventsQueueName')]", queues);
        Assert.Contains("[format('{0}-poison', variables('inboxEventsQueueName'))]", queues);
    }

    [Fact]
    public void Api_base_url_is_an_output()
    {
        var output = bicep.Main.Json["outputs"]!["apiBaseUrl"]!;
        Assert.Contains("https://", (string)output["value"]!);
        Assert.Contains("defaultHostName", (string)output["value"]!);
    }
}
