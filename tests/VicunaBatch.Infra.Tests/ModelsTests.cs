using System.Text.Json.Nodes;

namespace VicunaBatch.Infra.Tests;

/// <summary>
/// A deployment serves the models its <c>models</c> parameter lists, the default first: one Service Bus work queue and
/// one GPU worker app per model, and a Functions app that knows every model and sends each batch to its model's queue.
/// </summary>
[Collection(BicepCollection.Name)]
public sealed class ModelsTests(BicepFixture bicep)
{
    [Fact]
    public void Models_parameter_is_a_typed_list_with_one_model_by_default()
    {
        var models = bicep.Main.Parameter("models")!;
        Assert.Equal(1, (int)models["minLength"]!);
        var model = Assert.Single(models["defaultValue"]!.AsArray())!;
        Assert.Equal(("vicuna-13b", "vicuna-13b-v1.5-fp16", "Consumption-GPU-NC24-A100"),
            ((string?)model["name"], (string?)model["package"], (string?)model["gpuProfileType"]));
        var type = bicep.Main.Json["definitions"]!["servedModel"]!["properties"]!;
        Assert.Equal(["name", "package", "gpuProfileType", "minReplicas", "maxReplicas"], type.AsObject().Select(p => p.Key));
        Assert.True((bool)type["minReplicas"]!["nullable"]!);
        Assert.Equal(64, (int)type["name"]!["maxLength"]!);
    }

    [Fact]
    public void Each_model_has_a_work_queue_named_by_the_prefix_the_function_app_is_given()
    {
        var queueNames = bicep.Main.Json["variables"]!["copy"]!.AsArray().Single(c => (string?)c!["name"] == "workQueueNames")!;
        Assert.Equal("[length(parameters('models'))]", (string?)queueNames["count"]);
        Assert.Equal("[format('{0}{1}', variables('workQueuePrefix'), parameters('models')[copyIndex('workQueueNames')].name)]", (string?)queueNames["input"]);

        var (servicebus, sbParameters) = bicep.Main.Module("servicebus");
        Assert.Equal("[variables('workQueueNames')]", (string?)sbParameters["queueNames"]!["value"]);
        var queue = servicebus.OfType("Microsoft.ServiceBus/namespaces/queues").Single().Resource;
        Assert.Equal("[length(parameters('queueNames'))]", (string?)queue["copy"]!["count"]);

        var (functions, fnParameters) = bicep.Main.Module("functions");
        Assert.Equal("[variables('workQueuePrefix')]", (string?)fnParameters["workQueuePrefix"]!["value"]);
        var settings = functions.Json["variables"]!["appSettings"]!;
        Assert.Equal("[parameters('workQueuePrefix')]", (string?)settings["ServiceBus__ModelQueuePrefix"]);
        Assert.Equal("[join(parameters('modelNames'), ',')]", (string?)settings["Models__Served"]);
        Assert.Null(settings["ServiceBus__QueueName"]); // no one queue for every model
        var modelNames = fnParameters["modelNames"]!["copy"]!.AsArray().Single()!;
        Assert.Equal("[parameters('models')[copyIndex('value')].name]", (string?)modelNames["input"]); // in the list's order: the default first
        Assert.Equal("work-", bicep.Main.Literal("[variables('workQueuePrefix')]"));
    }

    [Fact]
    public void Each_model_has_a_worker_app_told_its_name_queue_and_package()
    {
        var (workers, parameters) = bicep.Main.Module("workers");
        Assert.Equal("[parameters('models')]", (string?)parameters["models"]!["value"]);
        var app = workers.OfType("Microsoft.App/containerApps").Single().Resource;
        Assert.Equal("[length(parameters('models'))]", (string?)app["copy"]!["count"]);
        Assert.Contains("parameters('models')[copyIndex()].name", (string)app["name"]!); // one app per model, named from it
        Assert.Equal("[union(parameters('tags'), createObject('model', parameters('models')[copyIndex()].name))]", (string?)app["tags"]);

        var env = (string)app["properties"]!["template"]!["containers"]![0]!["env"]!;
        Assert.StartsWith("[concat(variables('commonEnv'), ", env);
        Assert.Contains("createObject('name', 'Model__Name', 'value', parameters('models')[copyIndex()].name)", env);
        Assert.Contains("createObject('name', 'ServiceBus__QueueName', 'value', parameters('workQueueNames')[copyIndex()])", env);
        Assert.Contains("parameters('models')[copyIndex()].package", env);
        var common = workers.Json["variables"]!["commonEnv"]!.AsArray().Select(v => (string)v!["name"]!).ToArray();
        Assert.DoesNotContain("ServiceBus__QueueName", common);
        Assert.DoesNotContain("Model__Name", common);
    }

    [Fact]
    public void The_worker_reads_its_package_from_blob_storage_into_memory_with_no_volume_for_a_copy()
    {
        var (workers, _) = bicep.Main.Module("workers");
        var app = workers.OfType("Microsoft.App/containerApps").Single().Resource;
        var env = (string)app["properties"]!["template"]!["containers"]![0]!["env"]!;
        // Model__SourceUri alone: the package is read into memory (a replica's 8 GiB of ephemeral storage holds no 13B package)
        Assert.Contains("createObject('name', 'Model__SourceUri', 'value', format('{0}{1}/{2}', parameters('blobEndpoint'), parameters('containers').models, parameters('models')[copyIndex()].package))", env);
        Assert.DoesNotContain("Model__Path", env);
        Assert.Null(app["properties"]!["template"]!["containers"]![0]!["volumeMounts"]);
        Assert.Null(app["properties"]!["template"]!["volumes"]);
    }

    [Fact]
    public void Pipelines_run_on_the_default_model()
    {
        var (_, parameters) = bicep.Main.Module("functions");
        Assert.Contains("parameters('models')[0].package", (string)parameters["modelSourceUri"]!["value"]!);
    }

    [Fact]
    public void Outputs_name_each_models_worker_app_and_queue()
    {
        var outputs = bicep.Main.Json["outputs"]!.AsObject();
        Assert.Equal("object", (string?)outputs["workerAppNames"]!["type"]);
        Assert.Equal("object", (string?)outputs["workQueueNames"]!["type"]);
        Assert.False(outputs.ContainsKey("workerAppName"));
    }

    [Theory]
    [MemberData(nameof(ParamFiles))]
    public void Parameter_files_list_their_models(string paramFile)
    {
        var text = File.ReadAllText(Path.Combine(BicepFixture.BicepDir, paramFile));
        Assert.Contains("param models = [", text);
        Assert.DoesNotContain("param modelName", text);
        Assert.Equal(0, bicep.Lint[paramFile].ExitCode);
    }

    public static TheoryData<string> ParamFiles => new(BicepFixture.ParamFiles);
}
