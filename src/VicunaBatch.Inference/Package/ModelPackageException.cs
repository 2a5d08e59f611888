namespace VicunaBatch.Inference.Package;

/// <summary>A model package folder that cannot be used: missing files, bad config, graph not matching the contract.</summary>
public sealed class ModelPackageException : Exception
{
    public ModelPackageException(string message) : base(message) { }

    public ModelPackageException(string message, Exception inner) : base(message, inner) { }
}
