using System.Text.Json.Nodes;

namespace VicunaBatch.Infra.Tests;

/// <summary>The GPU worker scales 0..N on the work queue through KEDA with a managed identity, and gets time to
/// checkpoint on SIGTERM.</summary>
[Collection(BicepCollection.Name)]
public sealed class WorkerScalingTests(BicepFixture bicep)
{
    private JsonObject WorkerApp(out ArmTemplate workers, out JsonObject parameters)
    {
        (workers, parameters) = bicep.Main.Module("workers");
        return workers.OfType("Microsoft.App/containerApps").Single().Resource;
    }

    [Fact]
    public void Scale_rule_targets_the_work_queue_with_identity_auth_from_zero_replicas()
    {
        var app = WorkerApp(out _, out var parameters);
        var scale = app["properties"]!["template"]!["scale"]!;
        Assert.Equal(0, (int)scale["minReplicas"]!);

        var rule = Assert.Single(scale["rules"]!.AsArray())!;
        var custom = rule["custom"]!;
        Assert.Equal("azure-servicebus", (string?)custom["type"]);
        Assert.Null(custom["auth"]); // no secretRef / connection string
        Assert.Equal("[parameters('scalerIdentityId')]", (string?)custom["identity"]);
        Assert.Contains(app["identity"]!["userAssignedIdentities"]!.AsObject(), p => p.Key.Contains("parameters('scalerIdentityId')"));

        var metadata = custom["metadata"]!;
        Assert.Equal("[parameters('workQueueName')]", (string?)metadata["queueName"]);
        Assert.Equal("[parameters('serviceBusNamespaceName')]", (string?)metadata["namespace"]);
        Assert.NotNull(metadata["messageCount"]);

        // main wires those parameters to the Service Bus module's queue and namespace
        Assert.Contains("'servicebus'", (string)parameters["workQueueName"]!["value"]!);
        Assert.Contains("outputs.queueName", (string)parameters["workQueueName"]!["value"]!);
        Assert.Contains("outputs.namespaceName", (string)parameters["serviceBusNamespaceName"]!["value"]!);
        var (servicebus, sbParameters) = bicep.Main.Module("servicebus");
        Assert.Equal("work", bicep.Main.Literal((string)sbParameters["queueName"]!["value"]!));
        Assert.Single(servicebus.OfType("Microsoft.ServiceBus/namespaces/queues"));
    }

    [Fact]
    public void Worker_pulls_its_image_with_its_identity_and_runs_on_the_gpu_profile()
    {
        var app = WorkerApp(out var workers, out _);
        var registry = Assert.Single(app["properties"]!["configuration"]!["registries"]!.AsArray())!;
        Assert.Equal("[parameters('workerIdentityId')]", (string?)registry["identity"]);
        Assert.Null(registry["passwordSecretRef"]);
        Assert.Null(app["properties"]!["configuration"]!["secrets"]);

        var gpuProfileName = workers.Literal("[variables('gpuProfileName')]");
        Assert.Equal($"[variables('gpuProfileName')]", (string?)app["properties"]!["workloadProfileName"]);
        var environment = workers.OfType("Microsoft.App/managedEnvironments").Single().Resource;
        var profiles = environment["properties"]!["workloadProfiles"]!.AsArray();
        Assert.Contains(profiles, p => (string?)p!["name"] == "[variables('gpuProfileName')]" || (string?)p!["name"] == gpuProfileName);
        Assert.Equal(
            ["Consumption-GPU-NC24-A100", "Consumption-GPU-NC8as-T4"],
            workers.Parameter("gpuProfileType")!["allowedValues"]!.AsArray().Select(v => (string)v!).ToArray());

        // A100 sizing for Vicuna-13B fp16: the whole profile (24 vCPU, 220 GiB host memory)
        var sizes = workers.Json["variables"]!["gpuSizes"]!;
        Assert.Equal(24, (int)sizes["Consumption-GPU-NC24-A100"]!["cpu"]!);
        Assert.Equal("220Gi", (string?)sizes["Consumption-GPU-NC24-A100"]!["memory"]);
    }

    [Fact]
    public void Termination_grace_period_leaves_time_to_checkpoint()
    {
        var app = WorkerApp(out _, out var parameters);
        Assert.Equal("[parameters('terminationGracePeriodSeconds')]", (string?)app["properties"]!["template"]!["terminationGracePeriodSeconds"]);
        Assert.Equal("[parameters('terminationGracePeriodSeconds')]", (string?)parameters["terminationGracePeriodSeconds"]!["value"]);
        Assert.True((int)bicep.Main.Parameter("terminationGracePeriodSeconds")!["defaultValue"]! >= 180);
    }

    [Fact]
    public void Work_queue_has_lock_dead_lettering_and_explicit_duplicate_detection()
    {
        var (servicebus, parameters) = bicep.Main.Module("servicebus");
        var queue = servicebus.OfType("Microsoft.ServiceBus/namespaces/queues").Single().Resource["properties"]!;
        Assert.Equal("[parameters('lockDuration')]", (string?)queue["lockDuration"]);
        Assert.Equal("PT5M", (string?)parameters["lockDuration"]!["value"]);
        Assert.Equal("[parameters('maxDeliveryCount')]", (string?)queue["maxDeliveryCount"]);
        Assert.True((bool)queue["deadLetteringOnMessageExpiration"]!);
        Assert.True((bool)queue["requiresDuplicateDetection"]!);
        Assert.Equal("[parameters('duplicateDetectionWindow')]", (string?)queue["duplicateDetectionHistoryTimeWindow"]);
        Assert.Equal("PT1H", (string?)bicep.Main.Parameter("duplicateDetectionWindow")!["defaultValue"]);
    }
}
