using System.Globalization;
using System.Net.Http.Headers;
using System.Text;

namespace ClusterQueue.Bench.Probe;

/// <summary>The node's admin calls the benchmarks need: define and change groups, and read gauges from /metrics.</summary>
public sealed class NodeApi(HttpClient client, string baseUrl, string? token)
{
    public string BaseUrl => baseUrl;

    public Task<bool> PutGroupAsync(string id, string json) => SendAsync(HttpMethod.Put, $"/v1/groups/{id}", json);

    public Task<bool> PatchGroupAsync(string id, string json) => SendAsync(HttpMethod.Patch, $"/v1/groups/{id}", json);

    /// <summary>An admin GET's status and body, for diagnostics.</summary>
    public async Task<string> GetAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, baseUrl + path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await client.SendAsync(request);
        return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
    }

    /// <summary>The sum of a gauge over its label sets (one line per group, or a single unlabelled line).</summary>
    public async Task<double> GaugeAsync(string name)
    {
        var text = await client.GetStringAsync($"{baseUrl}/metrics");
        var total = 0.0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is ' ' or '{')
            {
                total += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return total;
    }

    private async Task<bool> SendAsync(HttpMethod method, string path, string json)
    {
        using var request = new HttpRequestMessage(method, baseUrl + path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await client.SendAsync(request);
        if (response.IsSuccessStatusCode)
        {
            return true;
        }

        Console.Error.WriteLine($"{method} {path} on {baseUrl}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return false;
    }
}
