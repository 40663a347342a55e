using System.Globalization;

namespace ClusterQueue.Bench.Probe;

/// <summary>
/// Latency on the embedded node, in two parts.
/// (a) Ingest: the node's closed-loop capacity is measured first, then both the node and the bare Kestrel endpoint
///     get the same open-loop rate (half that capacity), in alternating rounds so drift in the machine's other load
///     hits both alike; the figures are the node's ack latency next to the bare endpoint's.
/// (b) End to end: a group with tokens to spare forwards to this probe; the time from a request's scheduled send to
///     the start of the downstream handler, next to the same requests' ack latency. Every acknowledged message must
///     arrive, or the run fails.
/// (c) Synchronous wait: the same group and rate with ?wait=, so each request returns with the target's answer; the
///     round trip next to (b)'s end-to-end and ack figures from the same run. Every request must get the target's 200.
/// (d) Continuations: chains of <see cref="Downstream.ChainSteps"/> steps in a group with tokens to spare; the time
///     from one step's call to the next one's, next to (b)'s ack-to-handler time (one trip through the queue).
/// </summary>
public static class LatencyBenchmark
{
    private const int ClosedLoopConnections = 32;
    private const double EmbeddedP50TargetMs = 5;

    public static async Task<int> RunAsync(ProbeArgs args)
    {
        var nodeUrl = args.Text("node");
        var bareUrl = args.Text("bare");
        var seconds = args.Number("seconds", 20);
        var e2eRate = args.Number("e2e-rate", 200);
        var port = (int)args.Number("listen", 0);
        var failed = false;

        await using var downstream = await Downstream.StartAsync(port, holding: false);
        using var adminClient = new HttpClient();
        var node = new NodeApi(adminClient, nodeUrl, args.Optional("token"));
        // The ingest group is held (one message per 1000 s) so its backlog costs the node nothing during the run.
        if (!await node.PutGroupAsync("lat", Group(0.001, 1, 1, $"{downstream.BaseUrl}/hooks/lat"))
            || !await node.PutGroupAsync("e2e", Group(1_000_000, 1_000_000, 64, $"{downstream.BaseUrl}/hooks/e2e"))
            || !await node.PutGroupAsync(Downstream.ChainGroup, Group(1_000_000, 1_000_000, 64, $"{downstream.BaseUrl}/hooks/{Downstream.ChainGroup}")))
        {
            return 1;
        }

        using var client = Load.NewClient(256);
        var nodeIngest = $"{nodeUrl}/hooks/lat";
        var bareIngest = $"{bareUrl}/hooks/lat";

        // Warm both (JIT, connections, SQLite's page cache) before anything is measured.
        await Load.ClosedLoopAsync(client, bareIngest, ClosedLoopConnections, 1);
        await Load.ClosedLoopAsync(client, nodeIngest, ClosedLoopConnections, 1);
        var (capacity, capacityFailures) = await Load.ClosedLoopAsync(client, nodeIngest, ClosedLoopConnections, 3);
        var (bareCapacity, _) = await Load.ClosedLoopAsync(client, bareIngest, ClosedLoopConnections, 3);
        if (capacityFailures > 0)
        {
            Console.WriteLine($"FAIL: the node refused {capacityFailures} ingest requests under closed-loop load");
            failed = true;
        }

        var rate = Math.Floor(capacity / 2);
        Console.WriteLine($"closed loop, {ClosedLoopConnections} connections, 3 s: node {capacity:0} req/s, bare {bareCapacity:0} req/s (node/bare {capacity / bareCapacity:0.00})");
        Console.WriteLine($"open loop at {rate:0} req/s (half the node's capacity), {seconds:0.#} s per target in two alternating rounds");

        await Load.OpenLoopAsync(client, _ => nodeIngest, rate, 1, false);
        await Load.OpenLoopAsync(client, _ => bareIngest, rate, 1, false);
        var nodeSamples = new List<Sample>();
        var bareSamples = new List<Sample>();
        for (var round = 0; round < 2; round++)
        {
            nodeSamples.AddRange(await Load.OpenLoopAsync(client, _ => nodeIngest, rate, seconds / 2, false));
            bareSamples.AddRange(await Load.OpenLoopAsync(client, _ => bareIngest, rate, seconds / 2, false));
        }

        failed |= ReportRejected("node", nodeSamples) | ReportRejected("bare", bareSamples);
        var nodeAck = new Percentiles(nodeSamples.Where(s => s.Accepted).Select(s => s.LatencyMs));
        var bareAck = new Percentiles(bareSamples.Where(s => s.Accepted).Select(s => s.LatencyMs));
        var launch = new Percentiles(nodeSamples.Concat(bareSamples).Select(s => s.LaunchLagMs));
        Console.WriteLine();
        Console.WriteLine("(a) ingest ack latency, from the scheduled send time:");
        Console.WriteLine($"  node (durable, SQLite): {nodeAck.Summary()}");
        Console.WriteLine($"  bare Kestrel endpoint:  {bareAck.Summary()}");
        Console.WriteLine($"  node - bare: p50 {Signed.Format(nodeAck.At(0.5) - bareAck.At(0.5))} ms, p99 {Signed.Format(nodeAck.At(0.99) - bareAck.At(0.99))} ms, p99.9 {Signed.Format(nodeAck.At(0.999) - bareAck.At(0.999))} ms");
        Console.WriteLine($"  node / bare: p50 {nodeAck.At(0.5) / bareAck.At(0.5):0.00}x, p99 {nodeAck.At(0.99) / bareAck.At(0.99):0.00}x, p99.9 {nodeAck.At(0.999) / bareAck.At(0.999):0.00}x");
        Console.WriteLine($"  launcher lag (scheduled to sent, included in both): p50 {launch.At(0.5):0.000} ms, p99 {launch.At(0.99):0.000} ms");

        var (e2eFailed, queueTrip) = await EndToEndAsync(client, downstream, nodeUrl, e2eRate, seconds, args.Strict);
        failed |= e2eFailed;
        failed |= await SynchronousWaitAsync(client, nodeUrl, e2eRate, seconds, queueTrip);
        failed |= await ContinuationsAsync(client, downstream, nodeUrl, e2eRate, seconds, queueTrip);
        Console.WriteLine();
        Console.WriteLine(failed ? "RESULT: FAIL" : "RESULT: OK");
        return failed ? 1 : 0;
    }

    /// <summary>(b); besides the verdict, its percentiles for (c) and (d) to be read against.</summary>
    private static async Task<(bool Failed, QueueTrip Trip)> EndToEndAsync(HttpClient client, Downstream downstream, string nodeUrl, double rate, double seconds, bool strict)
    {
        var url = $"{nodeUrl}/hooks/e2e";
        // A second of warm-up warms the forwarding client and the actor path; it is checked for delivery, not timed.
        var warm = await Load.OpenLoopAsync(client, _ => url, rate, 1, true);
        var samples = await Load.OpenLoopAsync(client, _ => url, rate, seconds, true);
        var failed = ReportRejected("end-to-end", warm.Concat(samples).ToList());
        var acked = warm.Concat(samples).Where(s => s.Accepted && s.MessageId is not null).Select(s => s.MessageId!).ToHashSet(StringComparer.Ordinal);

        // At-least-once delivery: wait for the stragglers, then every acknowledged id must have reached the downstream.
        var deadline = Clock.Now + Clock.Ticks(15);
        Dictionary<string, Arrival> first;
        while (true)
        {
            first = FirstArrivals(downstream.Snapshot());
            if (acked.All(first.ContainsKey) || Clock.Now > deadline)
            {
                break;
            }

            await Task.Delay(100);
        }

        var arrivals = downstream.Snapshot().Where(a => a.Group == "e2e").ToList();
        var missing = acked.Count(id => !first.ContainsKey(id));
        var duplicates = arrivals.Count - arrivals.Select(a => a.MessageId).Distinct(StringComparer.Ordinal).Count();
        var measured = samples.Where(s => s.Accepted && s.MessageId is not null && first.ContainsKey(s.MessageId)).ToList();
        var e2e = new Percentiles(measured.Select(s => Clock.Milliseconds(first[s.MessageId!].At - s.Scheduled)));
        var ack = new Percentiles(measured.Select(s => s.LatencyMs));
        var afterAck = new Percentiles(measured.Select(s => Clock.Milliseconds(first[s.MessageId!].At - s.Completed)));
        Console.WriteLine();
        Console.WriteLine($"(b) end to end at {rate:0} msg/s for {seconds:0.#} s (group rate 1e6, burst 1e6, concurrency 64):");
        Console.WriteLine($"  scheduled send -> downstream handler start: {e2e.Summary()}");
        Console.WriteLine($"  scheduled send -> ingest ack (same requests): {ack.Summary()}");
        Console.WriteLine($"  ingest ack -> downstream handler start:     p50 {afterAck.At(0.5):0.000} ms  p99 {afterAck.At(0.99):0.000} ms (negative: forwarded before the ack reached the sender)");
        Console.WriteLine($"  delivery: {acked.Count} acknowledged, {acked.Count - missing} arrived, {missing} missing, {duplicates} duplicate deliveries");
        var met = e2e.At(0.5) < EmbeddedP50TargetMs;
        Console.WriteLine($"  target end-to-end p50 < {EmbeddedP50TargetMs} ms: {(met ? "met" : "MISSED")} ({e2e.At(0.5):0.000} ms)");
        if (missing > 0)
        {
            Console.WriteLine($"FAIL: {missing} acknowledged messages never reached the downstream");
            failed = true;
        }

        return (failed || (strict && !met), new QueueTrip(e2e, ack, afterAck));
    }

    /// <summary>(b)'s figures: scheduled send to handler start, to ack, and ack to handler start.</summary>
    private sealed record QueueTrip(Percentiles EndToEnd, Percentiles Ack, Percentiles AfterAck);

    private static async Task<bool> SynchronousWaitAsync(HttpClient client, string nodeUrl, double rate, double seconds, QueueTrip trip)
    {
        var url = $"{nodeUrl}/hooks/e2e?wait=10";
        await Load.OpenLoopAsync(client, _ => url, rate, 1, false);
        var samples = await Load.OpenLoopAsync(client, _ => url, rate, seconds, false);
        var answered = samples.Where(s => s.Status == 200).ToList();
        var sync = new Percentiles(answered.Select(s => s.LatencyMs));
        Console.WriteLine();
        Console.WriteLine($"(c) synchronous wait (?wait=10) at {rate:0} msg/s for {seconds:0.#} s, same group as (b):");
        Console.WriteLine($"  scheduled send -> the target's answer: {sync.Summary()}");
        Console.WriteLine($"  against (b): sync / ack p50 {sync.At(0.5) / trip.Ack.At(0.5):0.00}x, sync - end-to-end p50 {Signed.Format(sync.At(0.5) - trip.EndToEnd.At(0.5))} ms (the answer's way back)");
        Console.WriteLine($"  answers: {answered.Count} of {samples.Length} with the target's 200");
        if (answered.Count < samples.Length)
        {
            var statuses = string.Join(", ", samples.Where(s => s.Status != 200).GroupBy(s => s.Status).Select(g => $"{g.Key}: {g.Count()}"));
            Console.WriteLine($"FAIL: {samples.Length - answered.Count} waits did not return the target's 200 ({statuses}; 0 = connection error, 202 = the wait ran out)");
            return true;
        }

        return false;
    }

    private static async Task<bool> ContinuationsAsync(HttpClient client, Downstream downstream, string nodeUrl, double rate, double seconds, QueueTrip trip)
    {
        var url = $"{nodeUrl}/hooks/{Downstream.ChainGroup}";
        // One chain is ChainSteps calls: a fifth of (b)'s rate keeps the calls per second alike.
        var chains = rate / Downstream.ChainSteps;
        var samples = await Load.OpenLoopAsync(client, _ => url, chains, seconds, true);
        var failed = ReportRejected("continuations", samples.ToList());
        var ids = samples.Where(s => s.Accepted && s.MessageId is not null).Select(s => s.MessageId!).ToHashSet(StringComparer.Ordinal);

        Dictionary<string, Arrival[]> steps;
        var deadline = Clock.Now + Clock.Ticks(15);
        while (true)
        {
            steps = downstream.Snapshot().Where(a => a.Group == Downstream.ChainGroup)
                .GroupBy(a => a.MessageId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.OrderBy(a => a.At).ToArray(), StringComparer.Ordinal);
            if (ids.All(id => steps.TryGetValue(id, out var calls) && calls.Any(c => c.Step == Downstream.ChainSteps)) || Clock.Now > deadline)
            {
                break;
            }

            await Task.Delay(100);
        }

        var finished = ids.Where(id => steps.TryGetValue(id, out var calls) && calls.Select(c => c.Step).Distinct().Count() == Downstream.ChainSteps).ToList();
        var turns = new Percentiles(finished.SelectMany(id => steps[id].Zip(steps[id].Skip(1), (a, b) => Clock.Milliseconds(b.At - a.At))));
        var whole = new Percentiles(finished.Select(id => Clock.Milliseconds(steps[id][^1].At - steps[id][0].At)));
        Console.WriteLine();
        Console.WriteLine($"(d) continuations: {chains:0.#} chains/s of {Downstream.ChainSteps} steps for {seconds:0.#} s (group rate 1e6, burst 1e6, concurrency 64):");
        Console.WriteLine($"  one step's call -> the next step's call: {turns.Summary()}");
        Console.WriteLine($"  first call -> last call of a chain:      {whole.Summary()}");
        Console.WriteLine($"  against (b): step turn / ack-to-handler p50 {turns.At(0.5) / trip.AfterAck.At(0.5):0.00}x ({turns.At(0.5):0.000} vs {trip.AfterAck.At(0.5):0.000} ms)");
        Console.WriteLine($"  chains: {ids.Count} acknowledged, {finished.Count} finished every step");
        if (finished.Count < ids.Count)
        {
            Console.WriteLine($"FAIL: {ids.Count - finished.Count} acknowledged chains did not run every step");
            failed = true;
        }

        return failed;
    }

    private static Dictionary<string, Arrival> FirstArrivals(IReadOnlyList<Arrival> arrivals)
    {
        var first = new Dictionary<string, Arrival>(StringComparer.Ordinal);
        foreach (var arrival in arrivals)
        {
            if (!first.TryGetValue(arrival.MessageId, out var seen) || arrival.At < seen.At)
            {
                first[arrival.MessageId] = arrival;
            }
        }

        return first;
    }

    private static bool ReportRejected(string target, List<Sample> samples)
    {
        var rejected = samples.Count(s => !s.Accepted);
        if (rejected == 0)
        {
            return false;
        }

        var statuses = string.Join(", ", samples.Where(s => !s.Accepted).GroupBy(s => s.Status).Select(g => $"{g.Key}: {g.Count()}"));
        Console.WriteLine($"FAIL: {target} answered {rejected} of {samples.Count} requests with non-2xx ({statuses}; 0 = connection error)");
        return true;
    }

    public static string Group(double rate, int burst, int concurrency, string target, string extra = "") =>
        string.Create(CultureInfo.InvariantCulture,
            $"{{\"ratePerSecond\":{rate},\"burst\":{burst},\"maxConcurrency\":{concurrency},\"target\":{{\"url\":\"{target}\"}}{extra}}}");
}
