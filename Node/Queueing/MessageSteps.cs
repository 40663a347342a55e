using System.Text.Json;
using ClusterQueue.Contracts;

namespace ClusterQueue.Node.Queueing;

/// <summary>A message's finished continuation steps as the store keeps them: a JSON array in its row, bounded by maxSteps.</summary>
public static class MessageSteps
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IReadOnlyList<MessageStep> Read(string? stored) =>
        string.IsNullOrEmpty(stored) ? [] : JsonSerializer.Deserialize<List<MessageStep>>(stored, Json) ?? [];

    public static string Append(string? stored, MessageStep step) => JsonSerializer.Serialize<IReadOnlyList<MessageStep>>([.. Read(stored), step], Json);
}
