namespace VicunaBatch.Core.Formats;

/// <summary>An option out of range as one line for a person: its name, its value and the reason, without the
/// exception's <c>(Parameter '…')</c> and <c>Actual value was …</c> parts.</summary>
public static class OutOfRangeText
{
    /// <summary>The reason alone: the exception's first sentence.</summary>
    public static string Reason(ArgumentOutOfRangeException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return cut < 0 ? message : message[..cut];
    }

    /// <summary><c>NAME VALUE: reason</c> (<c>NAME: reason</c> without a value); enums and booleans in lower case.</summary>
    public static string Describe(string name, ArgumentOutOfRangeException e)
    {
        var value = e.ActualValue switch
        {
            Enum or bool => e.ActualValue.ToString()!.ToLowerInvariant(),
            { } other => other.ToString(),
            null => null,
        };
        return $"{name}{(value is null ? "" : " " + value)}: {Reason(e)}";
    }
}
