using System.Diagnostics;
using System.Xml.Linq;
using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.GenAi.Tests;

/// <summary>
/// GenAI and the engine share one ONNX Runtime in this process: the engine's version (Directory.Packages.props), not
/// the 1.32.0 GenAI's package asks for, so the agreement tests test the engine as it ships.
/// </summary>
public sealed class OnnxRuntimeInProcessTests
{
    [Fact]
    public void GenAiAndTheEngine_loadOneOnnxRuntime_theEnginesVersion()
    {
        var package = Path.Combine(Checkout.Root, "models", "tiny");
        GenAiGreedy.Generate(package, [[1, 5]], 2);
        using (LoadedModel.Open(package, new EngineOptions { MaxBatchSize = 1 }))
        {
        }

        var runtimes = Process.GetCurrentProcess().Modules.Cast<ProcessModule>()
            .Select(m => m.FileName).Where(f => Path.GetFileName(f) == "libonnxruntime.so").Distinct().ToList();
        Assert.Single(runtimes);
        var shipped = XDocument.Load(Path.Combine(Checkout.Root, "Directory.Packages.props")).Descendants("PackageVersion")
            .Single(e => (string?)e.Attribute("Include") == "Microsoft.ML.OnnxRuntime").Attribute("Version")!.Value;
        Assert.Equal(shipped, OrtEnv.Instance().GetVersionString());
    }
}
