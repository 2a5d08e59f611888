using VicunaBatch.Testing;

namespace VicunaBatch.GenAi.Tests;

/// <summary>One <see cref="ModelFixture"/> for the test classes marked <c>[Collection("models")]</c>.</summary>
[CollectionDefinition("models")]
public sealed class ModelsCollection : ICollectionFixture<ModelFixture>
{
}
