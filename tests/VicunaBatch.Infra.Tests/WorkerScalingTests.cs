using System.Text.Json.Nodes;

namespace VicunaBatch.Infra.Tests;

/// <summary>Each model's GPU worker app scales min..max on its own work queue through KEDA with a managed identity,
/// and gets time to checkpoint on SIGTERM.</summary>
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
        Assert.Equal("[coalesce(tryGet(parameters('models')[copyIndex()], 'minReplicas'), 0)]", (string?)scale["minReplicas"]); // 0 unless the model says
        Assert.Equal("[parameters('models')[copyIndex()].maxReplicas]", (string?)scale["maxReplicas"]);

        var rule = Assert.Single(scale["rules"]!.AsArray())!;
        var custom = rule["custom"]!;
        Assert.Equal("azure-servicebus", (string?)custom["type"]);
        Assert.Null(custom["auth"]); // no secretRef / connection string
        Assert.Equal("[parameters('scalerIdentityId')]", (string?)custom["identity"]);
        Assert.Contains(app["identity"]!["userAssignedIdentities"]!.AsObject(), p => p.Key.Contains("parameters('scalerIdentityId')"));

        var metadata = custom["metadata"]!;
        Assert.Equal("[parameters('workQueueNames')[copyIndex()]]", (string?)metadata["queueName"]); // the app's own model's queue
        Assert.Equal("[parameters('serviceBusNamespaceName')]", (string?)metadata["namespace"]);
        Assert.NotNull(metadata["messageCount"]);

        // main wires those parameters to the Service Bus module's queue and namespace
        Assert.Equal("[reference('serviceBus').outputs.queueNames.value]", (string)parameters["workQueueNames"]!["value"]!);
        Assert.Contains("outputs.namespaceName", (string)parameters["serviceBusNamespaceName"]!["value"]!);
    }

    [Fact]
    public void Scaler_identity_is_for_the_scale_rule_only_and_the_worker_identity_for_the_code()
    {
        var app = WorkerApp(out _, out _);
        // lifecycle None: no container can get a token for the Service Bus Data Owner identity (the KEDA rule still can)
        // the worker identity (receive, blobs, AcrPull) has no setting, so the default, All: the worker's code signs in with it
        var setting = Assert.Single(app["properties"]!["configuration"]!["identitySettings"]!.AsArray())!;
        Assert.Equal("[parameters('scalerIdentityId')]", (string?)setting["identity"]);
        Assert.Equal("None", (string?)setting["lifecycle"]);
    }

    [Fact]
    public void Worker_pulls_its_image_with_its_identity_and_runs_on_the_gpu_profile()
    {
        var app = WorkerApp(out var workers, out _);
        var registry = Assert.Single(app["properties"]!["configuration"]!["registries"]!.AsArray())!;
        Assert.Equal("[parameters('workerIdentityId')]", (string?)registry["identity"]);
        Assert.Null(registry["passwordSecretRef"]);
        Assert.Null(app["properties"]!["configuration"]!["secrets"]);

        // the app runs on the profile of its model's GPU kind, and the environment has a profile for each kind in use
        Assert.Equal("[variables('gpuProfileNames')[parameters('models')[copyIndex()].gpuProfileType]]", (string?)app["properties"]!["workloadProfileName"]);
        var environment = workers.OfType("Microsoft.App/managedEnvironments").Single().Resource;
        var profiles = (string)environment["properties"]!["workloadProfiles"]!;
        Assert.Contains("variables('gpuProfileNames')[lambdaVariables('type')]", profiles);
        Assert.Contains("variables('gpuProfileTypes')", profiles);
        Assert.Equal(
            ["Consumption-GPU-NC24-A100", "Consumption-GPU-NC8as-T4"],
            workers.Json["definitions"]!.AsObject().Single(d => d.Key.EndsWith("gpuProfile")).Value!["allowedValues"]!.AsArray().Select(v => (string)v!).ToArray());
        var names = workers.Json["variables"]!["gpuProfileNames"]!.AsObject();
        Assert.Equal(["Consumption-GPU-NC24-A100", "Consumption-GPU-NC8as-T4"], names.Select(p => p.Key));

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
        var queue = servicebus.OfType("Microsoft.ServiceBus/namespaces/queues").Single().Resource["properties"]!; // each model's
        Assert.Equal("[parameters('lockDuration')]", (string?)queue["lockDuration"]);
        Assert.Equal("PT5M", (string?)parameters["lockDuration"]!["value"]);
        Assert.Equal("[parameters('maxDeliveryCount')]", (string?)queue["maxDeliveryCount"]);
        Assert.True((bool)queue["deadLetteringOnMessageExpiration"]!);
        Assert.True((bool)queue["requiresDuplicateDetection"]!);
        Assert.Equal("[parameters('duplicateDetectionWindow')]", (string?)queue["duplicateDetectionHistoryTimeWindow"]);
        Assert.Equal("PT1H", (string?)bicep.Main.Parameter("duplicateDetectionWindow")!["defaultValue"]);
    }
}
