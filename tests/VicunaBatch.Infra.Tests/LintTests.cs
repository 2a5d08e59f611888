namespace VicunaBatch.Infra.Tests;

/// <summary><c>bicep lint</c> of both parameter files (which lints main.bicep and every module with
/// infra/bicep/bicepconfig.json) reports nothing: a warning fails like an error.</summary>
[Collection(BicepCollection.Name)]
public sealed class LintTests(BicepFixture bicep)
{
    public static TheoryData<string> ParamFiles => new(BicepFixture.ParamFiles);

    [Theory]
    [MemberData(nameof(ParamFiles))]
    public void Lint_reports_no_warning_or_error(string paramFile)
    {
        var run = bicep.Lint[paramFile];
        var diagnostics = (run.Stdout + run.Stderr).Trim();
        Assert.True(run.ExitCode == 0 && diagnostics.Length == 0, $"{run.Command} exited {run.ExitCode}:\n{diagnostics}");
    }
}
