namespace VicunaBatch.Inference.Text;

/// <summary>One message of a chat; <see cref="Role"/> is one of <see cref="SystemRole"/>, <see cref="UserRole"/>, <see cref="AssistantRole"/>.</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public const string SystemRole = "system";
    public const string UserRole = "user";
    public const string AssistantRole = "assistant";
}
