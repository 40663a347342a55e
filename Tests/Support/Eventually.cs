namespace ClusterQueue.Tests.Support;

/// <summary>Polls until a condition holds, failing the test after a bound generous enough for a slow, shared machine.</summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Reads until <paramref name="done"/> accepts the value, and returns that value.</summary>
    public static async Task<T> ReadAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Timed out after {timeout ?? DefaultTimeout} waiting for {what}; last seen: {value}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until <paramref name="condition"/> is true.</summary>
    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        ReadAsync(() => Task.FromResult(condition()), ok => ok, what, timeout);
}
