using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VicunaBatch.Testing;

namespace VicunaBatch.Infra.Tests;

/// <summary>infra/deploy.sh against a fake <c>az</c> (<see cref="FakeAz"/>): the region preflight runs before anything
/// is created and stops a deploy the region cannot serve, and the worker apps move to an image only once it is in the
/// registry (a first deploy runs the placeholder, a redeploy keeps what the workers run).</summary>
[Collection(BicepCollection.Name)]
public sealed partial class DeployScriptTests(BicepFixture bicep) : IDisposable
{
    private const string Registry = "crvicunaprodabc123";
    private readonly FakeAz _az = new FakeAz()
        .On("'functionapp list-flexconsumption-locations'*", "australiaeast\nswedencentral\nwestus3\n")
        .On("'functionapp list-flexconsumption-runtimes'*", "8.0\n10.0\n")
        .On("'containerapp env workload-profile list-supported'*", "Consumption\nD4\nConsumption-GPU-NC24-A100\nConsumption-GPU-NC8as-T4\n")
        .On("'containerapp list-usages'*", "0\t10\n")
        .On("'deployment group show'*'outputs.registryName.value'*", Registry + "\n");

    public void Dispose() => _az.Dispose();

    private IReadOnlyList<string> DeploymentCreates => _az.Calls.Where(c => c.StartsWith("deployment group create")).ToList();

    private int IndexOf(string prefix) => _az.Calls.ToList().FindIndex(c => c.StartsWith(prefix));

    [Fact]
    public async Task First_prod_deploy_pushes_the_worker_image_before_pointing_the_workers_at_it()
    {
        var (exitCode, stdout, stderr) = await _az.RunDeployAsync("prod", "--no-admin", "--build-worker", "src/VicunaBatch.Worker/Dockerfile");

        Assert.True(exitCode == 0, stderr);
        var creates = DeploymentCreates;
        Assert.Equal(2, creates.Count);
        Assert.Contains("--parameters " + Path.Combine(Checkout.Root, "infra", "bicep", "main.prod.bicepparam"), creates[0]);
        Assert.EndsWith("| image=", creates[0]); // no worker app yet: the placeholder
        var build = Assert.Single(_az.Calls, c => c.StartsWith("acr build"));
        var tag = BuiltTag().Match(build);
        Assert.True(tag.Success, build);
        Assert.Contains($"--registry {Registry} ", build);
        Assert.EndsWith($"| image={tag.Groups[1].Value}", creates[1]);
        Assert.Contains($"worker image {tag.Groups[1].Value}", stdout);

        var calls = _az.Calls.ToList();
        Assert.True(IndexOf("containerapp env workload-profile list-supported") < IndexOf("group create"));
        Assert.True(IndexOf("group create") < calls.IndexOf(creates[0]));
        Assert.True(calls.IndexOf(creates[0]) < calls.IndexOf(build));
        Assert.True(calls.IndexOf(build) < calls.IndexOf(creates[1]));
    }

    [Fact]
    public async Task Redeploy_keeps_the_image_the_workers_run()
    {
        const string running = Registry + ".azurecr.io/vicuna-batch-worker:20261201000000";
        _az.On("'containerapp list -g rg-vicuna-prod'*", running + "\n");

        var (exitCode, _, stderr) = await _az.RunDeployAsync("prod", "--no-admin");

        Assert.True(exitCode == 0, stderr);
        Assert.EndsWith($"| image={running}", Assert.Single(DeploymentCreates));
        Assert.DoesNotContain(_az.Calls, c => c.StartsWith("acr "));
    }

    [Fact]
    public async Task Image_not_in_the_registry_is_refused_before_the_workers_move()
    {
        _az.On("'acr repository show'*", "", exitCode: 1);

        var (exitCode, _, stderr) = await _az.RunDeployAsync("prod", "--no-admin", "--image", "vicuna-batch-worker:missing");

        Assert.Equal(1, exitCode);
        Assert.Contains($"vicuna-batch-worker:missing is not in registry {Registry}", stderr);
        Assert.EndsWith("| image=", Assert.Single(DeploymentCreates));
        Assert.Contains(_az.Calls, c => c.StartsWith($"acr repository show --name {Registry} --image vicuna-batch-worker:missing"));
    }

    [Fact]
    public async Task Image_in_the_registry_is_deployed_after_the_lookup()
    {
        var (exitCode, _, stderr) = await _az.RunDeployAsync("dev", "--no-admin", "--image", "vicuna-batch-worker:v1");

        Assert.True(exitCode == 0, stderr);
        Assert.Equal(["| image=", "| image=vicuna-batch-worker:v1"], DeploymentCreates.Select(c => c[c.IndexOf('|')..]));
        Assert.True(IndexOf("acr repository show") < _az.Calls.ToList().IndexOf(DeploymentCreates[1]));
    }

    [Fact]
    public async Task Preflight_stops_before_anything_is_created_when_the_region_lacks_the_gpu_profile()
    {
        _az.On("'containerapp env workload-profile list-supported'*", "Consumption\nD4\n");

        var (exitCode, _, stderr) = await _az.RunDeployAsync("prod", "--no-admin", "-l", "westus3");

        Assert.Equal(1, exitCode);
        Assert.Contains("Consumption-GPU-NC24-A100: not offered in westus3", stderr);
        Assert.Contains("preflight: 1 problem(s) in westus3", stderr);
        Assert.DoesNotContain(_az.Calls, c => c.StartsWith("group create") || c.StartsWith("deployment "));
        Assert.Contains(_az.Calls, c => c.StartsWith("containerapp env workload-profile list-supported --location westus3"));
    }

    [Fact]
    public async Task Preflight_stops_when_the_region_has_no_flex_consumption_or_no_dotnet_10()
    {
        _az.On("'functionapp list-flexconsumption-locations'*", "eastus\n");
        _az.On("'functionapp list-flexconsumption-runtimes'*", "8.0\n");

        var (exitCode, _, stderr) = await _az.RunDeployAsync("dev", "--no-admin", "-l", "Sweden Central");

        Assert.Equal(1, exitCode);
        Assert.Contains("Flex Consumption: not offered in swedencentral", stderr);
        Assert.Contains("dotnet-isolated 10.0 on Flex Consumption: not offered in swedencentral", stderr);
        Assert.Contains("preflight: 2 problem(s)", stderr);
        Assert.DoesNotContain(_az.Calls, c => c.StartsWith("group create"));
    }

    [Fact]
    public async Task Preflight_stops_without_free_gpu_quota()
    {
        _az.On("'containerapp list-usages'*", "2\t2\n");

        var (exitCode, _, stderr) = await _az.RunDeployAsync("dev", "--no-admin");

        Assert.Equal(1, exitCode);
        Assert.Contains("Consumption-GPU-NC24-A100: no free GPU quota in swedencentral", stderr);
        Assert.Contains(_az.Calls, c => c.StartsWith("containerapp list-usages --location swedencentral")
            && c.Contains("name.value=='SubscriptionConsumptionNCA100Gpus'"));
        Assert.DoesNotContain(_az.Calls, c => c.StartsWith("group create"));
    }

    [Fact]
    public async Task Preflight_warns_and_deploys_when_quota_is_below_max_replicas_or_not_listed()
    {
        _az.On("'containerapp list-usages'*", "0\t2\n");
        var (exitCode, stdout, stderr) = await _az.RunDeployAsync("prod", "--no-admin");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("Consumption-GPU-NC24-A100 quota: 2 free of 2 GPUs; the models' maxReplicas add up to 8", stdout);
        Assert.Contains("warning: Consumption-GPU-NC24-A100: 2 free GPUs for up to 8 replicas", stderr);

        _az.On("'containerapp list-usages'*", "");
        (exitCode, _, stderr) = await _az.RunDeployAsync("prod", "--no-admin");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("warning: GPU quota not verified: az containerapp list-usages -l swedencentral lists no SubscriptionConsumptionNCA100Gpus", stderr);
    }

    [Fact]
    public async Task Preflight_only_checks_and_creates_nothing_and_skip_preflight_checks_nothing()
    {
        var (exitCode, stdout, stderr) = await _az.RunDeployAsync("prod", "--preflight-only");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("Flex Consumption: offered", stdout);
        Assert.Equal(4, _az.Calls.Count); // locations, runtimes, profiles, usages: no sign-in lookup, no group
        Assert.DoesNotContain(_az.Calls, c => c.StartsWith("group create") || c.StartsWith("ad "));

        var before = _az.Calls.Count;
        (exitCode, _, stderr) = await _az.RunDeployAsync("dev", "--no-admin", "--skip-preflight");
        Assert.True(exitCode == 0, stderr);
        Assert.DoesNotContain(_az.Calls.Skip(before), c => c.StartsWith("functionapp list-") || c.StartsWith("containerapp env workload-profile"));
        Assert.Single(DeploymentCreates);
    }

    public static TheoryData<string> Environments => new(["dev", "prod"]);

    /// <summary>The preflight reads each model's GPU kind and maxReplicas from the parameter file line by line; the
    /// demand it prints must be what Bicep makes of the same file.</summary>
    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Preflight_gpu_demand_is_what_bicep_reads_from_the_parameter_file(string environment)
    {
        var build = (await BicepFixture.RunAsync(bicep.Bicep, ["build-params", $"main.{environment}.bicepparam", "--stdout"], BicepFixture.BicepDir,
            new Dictionary<string, string?> { ["VICUNA_WORKER_IMAGE"] = null, ["VICUNA_ADMIN_PRINCIPAL_ID"] = null })).RequireSuccess();
        var parameters = JsonNode.Parse((string)JsonNode.Parse(build.Stdout)!["parametersJson"]!)!["parameters"]!;
        var expected = parameters["models"]!["value"]!.AsArray()
            .GroupBy(m => (string)m!["gpuProfileType"]!)
            .ToDictionary(g => g.Key, g => g.Sum(m => (int)m!["maxReplicas"]!));

        var (exitCode, stdout, stderr) = await _az.RunDeployAsync(environment, "--preflight-only");

        Assert.True(exitCode == 0, stderr);
        var printed = Demand().Matches(stdout).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
        Assert.Equal(expected.OrderBy(p => p.Key), printed.OrderBy(p => p.Key));
    }

    [GeneratedRegex(@"^acr build --registry \S+ --image (vicuna-batch-worker:\d{14}) --file src/VicunaBatch.Worker/Dockerfile ")]
    private static partial Regex BuiltTag();

    [GeneratedRegex(@"^  (\S+) quota: \d+ free of \d+ GPUs; the models' maxReplicas add up to (\d+)$", RegexOptions.Multiline)]
    private static partial Regex Demand();
}
