using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace VicunaBatch.Infra.Tests;

/// <summary>A compiled ARM template (or a module's nested one): resources by symbolic name or index, nested
/// deployments, and the few expression forms Bicep emits for literals (<c>variables('x').y</c>).</summary>
public sealed partial class ArmTemplate(JsonObject template)
{
    public JsonObject Json { get; } = template;

    /// <summary>Resources keyed by symbolic name (languageVersion 2.0) or by "type/name" (1.x lists).</summary>
    public IReadOnlyList<(string Key, JsonObject Resource)> Resources =>
        Json["resources"] switch
        {
            JsonObject byName => byName.Select(p => (p.Key, p.Value!.AsObject())).ToList(),
            JsonArray list => list.Select(r => ($"{r!["type"]}/{r["name"]}", r.AsObject())).ToList(),
            _ => [],
        };

    public IEnumerable<(string Key, JsonObject Resource)> OfType(string type) =>
        Resources.Where(r => string.Equals((string?)r.Resource["type"], type, StringComparison.OrdinalIgnoreCase));

    /// <summary>The nested template of module <paramref name="name"/>, with the parameter values main passes.</summary>
    public (ArmTemplate Template, JsonObject Parameters) Module(string name)
    {
        var deployment = OfType("Microsoft.Resources/deployments").Single(r => (string?)r.Resource["name"] == name).Resource;
        return (new ArmTemplate(deployment["properties"]!["template"]!.AsObject()), deployment["properties"]!["parameters"]!.AsObject());
    }

    /// <summary>This template and every nested one, depth first.</summary>
    public IEnumerable<ArmTemplate> SelfAndModules()
    {
        yield return this;
        foreach (var (_, deployment) in OfType("Microsoft.Resources/deployments"))
            foreach (var nested in new ArmTemplate(deployment["properties"]!["template"]!.AsObject()).SelfAndModules())
                yield return nested;
    }

    /// <summary>Evaluates <c>[variables('a').b]</c> and <c>[variables('a')]</c> to their literal; other strings as they are.</summary>
    public string Literal(string expression)
    {
        var match = VariableExpression().Match(expression);
        if (!match.Success) return expression;
        JsonNode? value = Json["variables"]![match.Groups[1].Value];
        if (match.Groups[2].Success) value = value![match.Groups[2].Value];
        return value!.GetValue<string>();
    }

    public JsonNode? Parameter(string name) => Json["parameters"]?[name];

    [GeneratedRegex(@"^\[variables\('(\w+)'\)(?:\.(\w+))?\]$")]
    private static partial Regex VariableExpression();
}
