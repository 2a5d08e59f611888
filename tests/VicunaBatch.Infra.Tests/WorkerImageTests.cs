using System.Text.Json.Nodes;

namespace VicunaBatch.Infra.Tests;

/// <summary>Dev and prod deploy the public placeholder image until deploy.sh names a pushed one through
/// <c>VICUNA_WORKER_IMAGE</c>: a first deploy never points a worker app at an image the registry does not have yet.</summary>
[Collection(BicepCollection.Name)]
public sealed class WorkerImageTests(BicepFixture bicep)
{
    public static TheoryData<string> ParamFiles => new(BicepFixture.ParamFiles);

    [Fact]
    public void Empty_worker_image_deploys_the_public_placeholder()
    {
        Assert.Equal("", (string?)bicep.Main.Parameter("workerImage")!["defaultValue"]);
        Assert.Equal("mcr.microsoft.com/k8se/quickstart:latest", bicep.Main.Literal("[variables('placeholderImage')]"));
        var (_, parameters) = bicep.Main.Module("workers");
        Assert.Equal(
            "[if(empty(parameters('workerImage')), createObject('value', variables('placeholderImage')), createObject('value', parameters('workerImage')))]",
            (string?)parameters["image"]);
    }

    [Theory]
    [MemberData(nameof(ParamFiles))]
    public async Task Parameter_file_leaves_the_image_empty_until_deploy_sh_names_one(string paramFile)
    {
        Assert.Equal("", await WorkerImageOf(paramFile, null));
        Assert.Equal("vicuna-batch-worker:20261207120000", await WorkerImageOf(paramFile, "vicuna-batch-worker:20261207120000"));
    }

    private async Task<string?> WorkerImageOf(string paramFile, string? environmentImage)
    {
        var run = (await BicepFixture.RunAsync(bicep.Bicep, ["build-params", paramFile, "--stdout"], BicepFixture.BicepDir,
            new Dictionary<string, string?> { ["VICUNA_WORKER_IMAGE"] = environmentImage, ["VICUNA_ADMIN_PRINCIPAL_ID"] = null })).RequireSuccess();
        var parameters = JsonNode.Parse((string)JsonNode.Parse(run.Stdout)!["parametersJson"]!)!["parameters"]!;
        return (string?)parameters["workerImage"]!["value"];
    }
}
