using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ClusterQueue.Bench.Probe;

/// <summary>Closed-loop (as fast as N connections go) and open-loop (a fixed timetable) POST load on /hooks/{group}.</summary>
public static class Load
{
    // The same 1 KiB-ish JSON as bench/post.lua, so these figures sit next to the wrk ones; "t" carries the schedule.
    private static readonly string Padding = new('x', 990);

    public static HttpClient NewClient(int maxConnections) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = maxConnections,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    })
    { Timeout = TimeSpan.FromSeconds(60) };

    public static HttpRequestMessage Post(string url, long sentAt, long sequence)
    {
        var body = $"{{\"t\":{sentAt},\"seq\":{sequence},\"data\":\"{Padding}\"}}";
        return new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        };
    }

    /// <summary>Requests per second that <paramref name="connections"/> back-to-back senders get acknowledged.</summary>
    public static async Task<(double Rate, long Failures)> ClosedLoopAsync(HttpClient client, string url, int connections, double seconds)
    {
        long done = 0;
        long failures = 0;
        var end = Clock.Now + Clock.Ticks(seconds);
        var started = Clock.Now;
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async worker =>
        {
            long sequence = worker;
            while (Clock.Now < end)
            {
                using var response = await client.SendAsync(Post(url, Clock.Now, sequence += connections));
                await response.Content.ReadAsByteArrayAsync();
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref done);
                }
                else
                {
                    Interlocked.Increment(ref failures);
                }
            }
        }));
        return (done / Clock.Seconds(Clock.Now - started), failures);
    }

    /// <summary>
    /// Sends <paramref name="rate"/> requests per second for <paramref name="seconds"/> on a fixed timetable, whatever
    /// the answers' pace. A dedicated thread launches requests that are due; it sleeps in 1 ms steps rather than
    /// spinning, because a spinning core is a core taken from the server on a 2-core machine. The launch lag that
    /// costs is recorded per request and is the same for every target.
    /// </summary>
    public static async Task<Sample[]> OpenLoopAsync(HttpClient client, Func<long, string> urlOf, double rate, double seconds, bool readMessageId)
    {
        var count = (int)Math.Round(rate * seconds);
        var tasks = new Task<Sample>[count];
        var interval = 1.0 / rate;
        var start = Clock.Now + Clock.Ticks(0.005);
        var launcher = new Thread(() =>
        {
            for (var k = 0; k < count; k++)
            {
                var scheduled = start + Clock.Ticks(k * interval);
                while (Clock.Now < scheduled)
                {
                    Thread.Sleep(1);
                }

                var sequence = k;
                tasks[k] = Task.Run(() => SendAsync(client, urlOf(sequence), scheduled, sequence, readMessageId));
            }
        })
        { IsBackground = true, Name = "open-loop launcher" };
        launcher.Start();
        await Task.Run(launcher.Join);
        return await Task.WhenAll(tasks);
    }

    private static async Task<Sample> SendAsync(HttpClient client, string url, long scheduled, long sequence, bool readMessageId)
    {
        var launched = Clock.Now;
        try
        {
            using var response = await client.SendAsync(Post(url, scheduled, sequence));
            var body = await response.Content.ReadAsByteArrayAsync();
            var completed = Clock.Now;
            string? id = null;
            if (readMessageId && response.IsSuccessStatusCode)
            {
                using var json = JsonDocument.Parse(body);
                id = json.RootElement.GetProperty("messageId").GetString();
            }

            return new Sample(scheduled, launched, completed, (int)response.StatusCode, id);
        }
        catch (HttpRequestException)
        {
            return new Sample(scheduled, launched, Clock.Now, 0, null);
        }
    }
}
