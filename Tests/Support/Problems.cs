using System.Net;
using System.Text.Json;

namespace ClusterQueue.Tests.Support;

/// <summary>Assertions on RFC 9457 problem details answers.</summary>
public static class Problems
{
    /// <summary>Asserts the status, the problem+json content type, and a status and title in the body; returns the body.</summary>
    public static async Task<JsonElement> ReadAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
        return problem;
    }

    /// <summary>Asserts a 400 whose errors are keyed by exactly <paramref name="field"/>, with a message.</summary>
    public static async Task AssertValidationErrorAsync(HttpResponseMessage response, string field, string? why = null)
    {
        var problem = await ReadAsync(response, HttpStatusCode.BadRequest);
        var keys = problem.GetProperty("errors").EnumerateObject().Select(e => e.Name).ToList();
        Assert.True(keys.SequenceEqual([field]), $"{why ?? field}: expected errors keyed exactly [{field}], got [{string.Join(", ", keys)}]");
        var messages = problem.GetProperty("errors").GetProperty(field);
        Assert.True(messages.GetArrayLength() > 0 && !string.IsNullOrWhiteSpace(messages[0].GetString()));
    }
}
