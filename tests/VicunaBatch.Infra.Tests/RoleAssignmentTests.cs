using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace VicunaBatch.Infra.Tests;

/// <summary>Every identity has exactly the roles it needs, at the scope it needs: the role assignments of the
/// compiled template (all modules) are collected as principal → {role @ scope} and compared with the table.</summary>
[Collection(BicepCollection.Name)]
public sealed partial class RoleAssignmentTests(BicepFixture bicep)
{
    // built-in role definition ids (tenant-independent)
    private const string ServiceBusDataSender = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39";
    private const string ServiceBusDataReceiver = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0";
    private const string ServiceBusDataOwner = "090c5cfd-751d-490a-894a-3ce6f1109419";
    private const string StorageBlobDataReader = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    private const string StorageBlobDataContributor = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
    private const string StorageBlobDataOwner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
    private const string StorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
    private const string StorageQueueDataMessageSender = "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a";
    private const string KeyVaultSecretsUser = "4633458b-17de-408a-b874-0445c86b69e6";
    private const string KeyVaultSecretsOfficer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
    private const string AcrPull = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    private const string MonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb";

    private static readonly Dictionary<string, string> RoleNames = new()
    {
        [ServiceBusDataSender] = "Azure Service Bus Data Sender",
        [ServiceBusDataReceiver] = "Azure Service Bus Data Receiver",
        [ServiceBusDataOwner] = "Azure Service Bus Data Owner",
        [StorageBlobDataReader] = "Storage Blob Data Reader",
        [StorageBlobDataContributor] = "Storage Blob Data Contributor",
        [StorageBlobDataOwner] = "Storage Blob Data Owner",
        [StorageQueueDataContributor] = "Storage Queue Data Contributor",
        [StorageQueueDataMessageSender] = "Storage Queue Data Message Sender",
        [KeyVaultSecretsUser] = "Key Vault Secrets User",
        [KeyVaultSecretsOfficer] = "Key Vault Secrets Officer",
        [AcrPull] = "AcrPull",
        [MonitoringMetricsPublisher] = "Monitoring Metrics Publisher",
    };

    // principal → "role @ scope"; scope is the resource type's last segment and the parameter naming the resource
    // (name[*]: each resource a list parameter names, the assignment being in a loop over it)
    private static readonly Dictionary<string, string[]> Expected = new()
    {
        ["function"] =
        [
            $"{ServiceBusDataSender} @ queues(workQueueNames[*])",
            $"{StorageBlobDataOwner} @ storageAccounts", // what Functions documents for host storage (AzureWebJobsStorage) with an identity
            $"{StorageQueueDataContributor} @ storageAccounts",
            $"{KeyVaultSecretsUser} @ vaults",
            $"{MonitoringMetricsPublisher} @ components",
        ],
        ["worker"] =
        [
            $"{ServiceBusDataReceiver} @ queues(workQueueNames[*])",
            $"{StorageBlobDataReader} @ containers(inputs)",
            $"{StorageBlobDataReader} @ containers(models)",
            $"{StorageBlobDataContributor} @ containers(results)",
            $"{StorageBlobDataContributor} @ containers(jobs)",
            $"{StorageQueueDataMessageSender} @ queues(shardDoneQueueName)",
            $"{AcrPull} @ registries",
            $"{MonitoringMetricsPublisher} @ components",
        ],
        ["scaler"] =
        [
            $"{ServiceBusDataOwner} @ queues(workQueueNames[*])",
        ],
        ["eventGridTopic"] =
        [
            $"{StorageQueueDataMessageSender} @ queues(inboxEventsQueueName)",
        ],
        ["admin"] =
        [
            $"{StorageBlobDataContributor} @ containers(models)",
            $"{KeyVaultSecretsOfficer} @ vaults",
        ],
    };

    private static readonly Dictionary<string, string> PrincipalByParameter = new()
    {
        ["functionIdentityName"] = "function",
        ["workerIdentityName"] = "worker",
        ["scalerIdentityName"] = "scaler",
        ["adminPrincipalId"] = "admin",
        ["eventGridTopicName"] = "eventGridTopic", // the system topic's system-assigned identity
    };

    [Fact]
    public void Every_identity_has_exactly_the_roles_in_the_table()
    {
        var actual = CollectRoleAssignments(bicep.Main);

        foreach (var principal in Expected.Keys.Union(actual.Keys))
        {
            var expected = Expected.GetValueOrDefault(principal, []).Order().ToArray();
            var got = actual.GetValueOrDefault(principal, []).Order().ToArray();
            Assert.True(expected.SequenceEqual(got),
                $"roles of {principal}:\n  expected: {Describe(expected)}\n  actual:   {Describe(got)}");
        }
    }

    [Fact]
    public void Role_table_names_resolve_to_the_identities_the_apps_run_as()
    {
        var (_, rbac) = bicep.Main.Module("rbac");
        var (_, functions) = bicep.Main.Module("functions");
        var (_, workers) = bicep.Main.Module("workers");

        // main passes names as variables('names').x to rbac and resourceId(..., variables('names').x) to the apps
        Assert.Equal(IdentityVariable(rbac, "functionIdentityName"), IdentityVariable(functions, "identityId"));
        Assert.Equal(IdentityVariable(rbac, "workerIdentityName"), IdentityVariable(workers, "workerIdentityId"));
        Assert.Equal(IdentityVariable(rbac, "scalerIdentityName"), IdentityVariable(workers, "scalerIdentityId"));
        Assert.Equal(3, new[] { "functionIdentityName", "workerIdentityName", "scalerIdentityName" }
            .Select(p => IdentityVariable(rbac, p)).Distinct().Count());
    }

    [Fact]
    public void Role_assignments_use_built_in_role_ids_and_service_principal_type_for_managed_identities()
    {
        foreach (var template in bicep.Main.SelfAndModules())
            foreach (var (key, assignment) in template.OfType("Microsoft.Authorization/roleAssignments"))
            {
                var properties = assignment["properties"]!;
                Assert.Contains(RoleId(template, (string)properties["roleDefinitionId"]!), (IDictionary<string, string>)RoleNames);
                if (Principal(template, (string)properties["principalId"]!) != "admin")
                    Assert.True((string?)properties["principalType"] == "ServicePrincipal", $"{key}: principalType");
            }
    }

    /// <summary>principal → ["roleGuid @ scope"] over the template and all its modules.</summary>
    internal static Dictionary<string, List<string>> CollectRoleAssignments(ArmTemplate main)
    {
        var result = new Dictionary<string, List<string>>();
        foreach (var template in main.SelfAndModules())
            foreach (var (key, assignment) in template.OfType("Microsoft.Authorization/roleAssignments"))
            {
                var properties = assignment["properties"]!;
                var principal = Principal(template, (string)properties["principalId"]!);
                var role = RoleId(template, (string)properties["roleDefinitionId"]!);
                var scope = Scope((string?)assignment["scope"]) ?? throw new Xunit.Sdk.XunitException($"{key}: no scope (resource group wide)");
                (result.TryGetValue(principal, out var list) ? list : result[principal] = []).Add($"{role} @ {scope}");
            }
        return result;
    }

    private static string Principal(ArmTemplate template, string principalId)
    {
        var reference = ReferencePrincipal().Match(principalId);
        string parameter;
        if (reference.Success)
        {
            var identity = template.Resources.Single(r => r.Key == reference.Groups[1].Value).Resource;
            parameter = ParameterExpression().Match((string)identity["name"]!).Groups[1].Value;
        }
        else parameter = ParameterExpression().Match(principalId).Groups[1].Value;
        return PrincipalByParameter.TryGetValue(parameter, out var principal)
            ? principal
            : throw new Xunit.Sdk.XunitException($"role assignment to an unknown principal: {principalId}");
    }

    private static string RoleId(ArmTemplate template, string roleDefinitionId)
    {
        var guid = GuidLiteral().Match(roleDefinitionId);
        if (guid.Success) return guid.Value;
        var variable = RoleVariable().Match(roleDefinitionId);
        Assert.True(variable.Success, $"role definition id not understood: {roleDefinitionId}");
        return template.Literal($"[variables('{variable.Groups[1].Value}').{variable.Groups[2].Value}]");
    }

    private static string? Scope(string? scope)
    {
        if (scope is null) return null;
        var match = ResourceIdScope().Match(scope);
        if (!match.Success) throw new Xunit.Sdk.XunitException($"scope not understood: {scope}");
        var type = match.Groups[1].Value.Split('/')[^1];
        var args = match.Groups[2].Value.Split(", ");
        if (args.Length == 1) return type;
        var last = args[^1];
        var member = Regex.Match(last, @"^parameters\('\w+'\)\.(\w+)$");
        if (member.Success) return $"{type}({member.Groups[1].Value})";
        var element = Regex.Match(last, @"^parameters\('(\w+)'\)\[copyIndex\(\)\]$"); // one assignment per element of a list
        if (element.Success) return $"{type}({element.Groups[1].Value}[*])";
        var parameter = Regex.Match(last, @"^parameters\('(\w+)'\)$");
        return $"{type}({(parameter.Success ? parameter.Groups[1].Value : last)})";
    }

    private static string IdentityVariable(JsonObject moduleParameters, string name)
    {
        var value = (string)moduleParameters[name]!["value"]!;
        var match = Regex.Match(value, @"variables\('names'\)\.(\w+)");
        Assert.True(match.Success, $"{name} = {value}");
        return match.Groups[1].Value;
    }

    private static string Describe(IEnumerable<string> entries) =>
        string.Join(", ", entries.Select(e =>
        {
            var guid = e[..36];
            return RoleNames.TryGetValue(guid, out var name) ? name + e[36..] : e;
        }));

    // a user-assigned identity: reference('id').principalId; a system-assigned one: reference('topic', '<api>', 'full').identity.principalId
    [GeneratedRegex(@"^\[reference\('(\w+)'(?:, '[\w-]+', 'full'\)\.identity|\))\.principalId\]$")]
    private static partial Regex ReferencePrincipal();

    [GeneratedRegex(@"parameters\('(\w+)'\)")]
    private static partial Regex ParameterExpression();

    [GeneratedRegex(@"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex GuidLiteral();

    [GeneratedRegex(@"variables\('(\w+)'\)\.(\w+)")]
    private static partial Regex RoleVariable();

    [GeneratedRegex(@"^\[resourceId\('([^']+)', (.+)\)\]$")]
    private static partial Regex ResourceIdScope();
}
