using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Core.Tests;

/// <summary>A batch has one model: the one its lines name, or the default when they name none.</summary>
public sealed class ServedModelsTests
{
    private readonly ServedModels _models = new(["vicuna-13b", "tiny"]);

    /// <summary>The one check of every host's model settings (serve's <c>--model</c>, the Functions app's <c>Models__Served</c>,
    /// the constructor): a sentence each host prefixes with its setting's name.</summary>
    [Theory]
    [InlineData(new string[0], "at least one model must be served")]
    [InlineData(new[] { "tiny", "bad name" }, "model name \"bad name\" " + ServedModels.NameRule)]
    [InlineData(new[] { "tiny", "Tiny" }, "model \"tiny\" is named twice (names differing only in case count as one)")]
    [InlineData(new[] { "tiny", "tiny-2" }, null)]
    public void Problem_namesOfADeployment_saysWhatIsWrongOrNull(string[] names, string? problem)
    {
        Assert.Equal(problem, ServedModels.Problem(names));
        if (problem is not null) Assert.Equal(problem + " (Parameter 'names')", Assert.Throws<ArgumentException>(() => new ServedModels(names)).Message);
    }

    [Fact]
    public void Resolve_noLineNamesAModel_isTheDefaultTheFirstServed()
    {
        Assert.Equal(("vicuna-13b", (JobError?)null), _models.Resolve([]));
    }

    [Fact]
    public void Resolve_linesNameOneServedModel_isThatModel()
    {
        Assert.Equal(("tiny", (JobError?)null), _models.Resolve([new NamedModel("tiny", 3)]));
    }

    [Fact]
    public void Resolve_aModelNotServed_isModelNotFoundAtItsFirstLine()
    {
        var (model, error) = _models.Resolve([new NamedModel("gpt-4o", 7)]);

        Assert.Null(model);
        Assert.Equal(("model_not_found", "body.model", 7), (error!.Code, error.Param, error.Line));
        Assert.Equal("the model 'gpt-4o' is not served here (served: vicuna-13b, tiny)", error.Message);
    }

    [Fact]
    public void Resolve_twoServedModelsInOneFile_isModelNotFoundAtTheSecondModelsLine()
    {
        var (model, error) = _models.Resolve([new NamedModel("tiny", 1), new NamedModel("vicuna-13b", 4)]);

        Assert.Null(model);
        Assert.Equal(("model_not_found", 4), (error!.Code, error.Line));
        Assert.Contains("a batch has one model", error.Message);
    }

    [Fact]
    public void Resolve_matchesNamesExactly_otherCaseIsAnotherModel()
    {
        Assert.Equal("model_not_found", _models.Resolve([new NamedModel("TINY", 1)]).Error?.Code);
    }

    [Theory]
    [InlineData("tiny", true)]
    [InlineData("vicuna-13b-v1.5_fp16", true)]
    [InlineData("a", true)]
    [InlineData("-tiny", false)]
    [InlineData("tiny-", false)] // a Service Bus queue name ends with a letter or digit
    [InlineData("tiny model", false)]
    [InlineData("org/model", false)]
    [InlineData("", false)]
    public void IsValidName_namesAQueueOnEveryHost(string name, bool valid)
    {
        Assert.Equal(valid, ServedModels.IsValidName(name));
    }

    [Fact]
    public void IsValidName_sixtyFourCharactersAtMost()
    {
        Assert.True(ServedModels.IsValidName(new string('m', 64)));
        Assert.False(ServedModels.IsValidName(new string('m', 65)));
    }

    [Theory]
    [InlineData(new string[0], "at least one model must be served")]
    [InlineData(new[] { "tiny", "bad name" }, "model name \"bad name\" must be 1-64 letters")]
    [InlineData(new[] { "tiny", "Tiny" }, "model \"tiny\" is named twice")]
    public void Constructor_badList_throwsSayingWhy(string[] names, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => new ServedModels(names));

        Assert.StartsWith(expected, e.Message);
    }
}
