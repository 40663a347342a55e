using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace ClusterQueue.Bench.Probe;

/// <summary>
/// Rate accuracy: many groups with different rates and bursts, each with a backlog it cannot drain in the run, and
/// the downstream's arrivals checked against burst + rate × T.
/// <code>
///   PUT held (concurrency 1, real burst, fast refill) ─▶ ingest backlogs ─▶ every group's first call parked at the
///   downstream, its bucket full ─▶ PATCH real rate + concurrency 64, release the parked call ─▶ measure S seconds
/// </code>
/// So every group starts its measured window from a full bucket, and the window check sees the burst as well as the
/// rate. (A group held at rate 0.001 instead would start empty: a PATCH keeps the tokens it had, and the burst would
/// go unchecked.) In a cluster, --kill-pid sends one node SIGTERM (or --kill-signal) a third of the way in; groups whose arrivals name
/// more than one node moved, and are reported apart.
/// </summary>
public static class RateBenchmark
{
    private const int Concurrency = 64;
    private const int Workers = 32;
    private const double ShortfallTarget = 0.02;
    private const double OvershootTarget = 1;

    /// <summary>
    /// Arrival stamps carry the node's and the probe's scheduling delays on a shared machine, so the correctness check
    /// (not the target) allows each window this much more time; at 0.5/s that is a twentieth of a message.
    /// </summary>
    private const double JitterTolerance = 0.1;

    /// <summary>
    /// The nodes' starts are the bucket's own decisions, so they get no time allowance; this much of a message covers
    /// the bucket's rounding and the stamp's 100 ns resolution (1e-5 s at 50/s is 0.0005).
    /// </summary>
    private const double StartsTolerance = 0.001;

    public static async Task<int> RunAsync(ProbeArgs args)
    {
        var nodeUrls = args.Text("nodes").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var seconds = args.Number("seconds", 60);
        var groupCount = (int)args.Number("groups", 1000);
        var port = (int)args.Number("listen", 0);
        var killPid = (int)args.Number("kill-pid", 0);
        var killSignal = args.Optional("kill-signal") ?? "TERM";
        var token = args.Optional("token");

        await using var downstream = await Downstream.StartAsync(port, holding: true);
        using var adminClient = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var nodes = nodeUrls.Select(url => new NodeApi(adminClient, url, token)).ToArray();
        if (nodes.Length > 1 && !await WaitForMembersAsync(nodes))
        {
            return 1;
        }

        // Opening a thousand groups takes a second or two; the earliest opened keep delivering until the last one's window ends.
        var plans = GroupPlan.Spread(groupCount, seconds, slackSeconds: 5 + groupCount / 200.0);
        var configured = plans.Sum(p => p.Rate);
        var backlog = plans.Sum(p => p.Backlog);
        Console.WriteLine($"{groupCount} groups on {nodes.Length} node(s), rates {plans.Min(p => p.Rate)}..{plans.Max(p => p.Rate)}/s (sum {configured:0}/s), bursts 1..10, backlog {backlog} messages, {seconds:0.#} s windows");

        // Held: one call parked, refilling at 50/s so even a burst of 10 is full within 0.2 s whatever the real rate.
        // The handler timeout outlasts the set-up so the parked call is never retried.
        var failures = await Pool.RunAsync(plans.Count, Workers, i => nodes[i % nodes.Length].PutGroupAsync(plans[i].Id,
            LatencyBenchmark.Group(GroupPlan.MaxRate, plans[i].Burst, 1, $"{downstream.BaseUrl}/hooks/{plans[i].Id}", ",\"handlerTimeoutSeconds\":3600")));
        if (failures > 0)
        {
            Console.WriteLine($"FAIL: {failures} group definitions were refused");
            return 1;
        }

        var ingestSeconds = await IngestAsync(plans, nodeUrls);
        if (ingestSeconds is null)
        {
            return 1;
        }

        Console.WriteLine($"ingested {backlog} messages in {ingestSeconds:0.0} s ({backlog / ingestSeconds:0} msg/s, {Workers} connections)");
        if (!await WaitForParkedAsync(downstream, groupCount))
        {
            return 1;
        }

        await Task.Delay(500);

        // Open: a group's window starts when its PATCH is sent. Its parked call is let go only once a call has started
        // under the new settings: until then the parked call fills the old concurrency of 1, so nothing can start under
        // the held rate. (In a cluster a PATCH reaches the group's owner some time after it is acknowledged; letting the
        // parked call go at the acknowledgement let the owner run on at the held rate until the change arrived.)
        var opened = new long[plans.Count];
        failures = await Pool.RunAsync(plans.Count, Workers, async i =>
        {
            opened[i] = Clock.Now;
            return await nodes[i % nodes.Length].PatchGroupAsync(plans[i].Id,
                string.Create(CultureInfo.InvariantCulture, $"{{\"ratePerSecond\":{plans[i].Rate},\"maxConcurrency\":{Concurrency}}}"));
        });
        if (failures > 0)
        {
            Console.WriteLine($"FAIL: {failures} PATCHes were refused");
            return 1;
        }

        // Releasing runs alongside the measurement: a group whose change never reaches its owner stays parked, is left
        // out of the figures and fails the run, and the other groups are measured all the same.
        using var stopReleasing = new CancellationTokenSource();
        var applied = new long[plans.Count];
        var releasing = ReleaseWhenAppliedAsync(downstream, plans, opened, applied, stopReleasing.Token);

        using var stalls = new StallMonitor();
        var openSpread = Clock.Seconds(opened.Max() - opened.Min());
        Console.WriteLine($"opened every group in {openSpread:0.00} s");
        long? killedAt = null;
        if (killPid > 0)
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds / 3));
            killedAt = Clock.Now;
            using var kill = Process.Start("kill", [$"-{killSignal}", killPid.ToString(CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
            Console.WriteLine($"sent SIG{killSignal} to node process {killPid} at {Clock.Seconds(killedAt.Value - opened.Min()):0.00} s into the run");
        }

        var end = opened.Max() + Clock.Ticks(seconds + 0.2);
        while (Clock.Now < end)
        {
            await Task.Delay(100);
        }

        await stopReleasing.CancelAsync();
        await releasing;
        var stuck = Enumerable.Range(0, plans.Count).Where(i => applied[i] == 0).ToList();
        var delays = new Percentiles(Enumerable.Range(0, plans.Count).Where(i => applied[i] != 0).Select(i => Clock.Milliseconds(applied[i] - opened[i])));
        Console.WriteLine($"PATCH sent to the group's first call under the new settings: p50 {delays.At(0.5):0} ms, p99 {delays.At(0.99):0} ms, max {delays.Max:0} ms");
        if (stuck.Count > 0)
        {
            Console.WriteLine($"FAIL: {stuck.Count} groups started nothing under their new settings in the whole run (left out of the figures below):");
            await DescribeStuckAsync(nodes, plans, stuck);
        }

        var arrivals = downstream.Snapshot();
        if (args.Optional("dump") is { } dump)
        {
            await DumpAsync(dump, plans, opened, killedAt, arrivals);
        }

        var measured = Enumerable.Range(0, plans.Count).Where(i => applied[i] != 0).ToList();
        var result = Analyse([.. measured.Select(i => plans[i])], [.. measured.Select(i => opened[i])], seconds, arrivals, stalls, args.Strict);
        result = stuck.Count > 0 ? 1 : result;
        ReportStalls(stalls, opened.Min(), end);
        Console.WriteLine($"wall clock against the monotonic clock over the run: {Signed.Format(stalls.WallClockDrift() * 100, 3)}% (the node's buckets run on the wall clock)");
        Console.WriteLine();
        Console.WriteLine(result == 0 ? "RESULT: OK" : "RESULT: FAIL");
        return result;
    }

    private static int Analyse(IReadOnlyList<GroupPlan> plans, long[] opened, double seconds, IReadOnlyList<Arrival> all, StallMonitor stalls, bool strict)
    {
        var failed = false;
        var results = new List<GroupResult>(plans.Count);
        var arrivalsByGroup = all.GroupBy(a => a.Group).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var redelivered = all.Count(a => a.Attempt > 1);
        for (var i = 0; i < plans.Count; i++)
        {
            var plan = plans[i];
            var from = opened[i];
            var to = from + Clock.Ticks(seconds);
            // Arrivals before the PATCH was sent are the parked call: it was started under the held settings.
            var window = arrivalsByGroup.GetValueOrDefault(plan.Id, [])
                .Where(a => a.At >= from && a.At <= to)
                .OrderBy(a => a.At)
                .ToList();
            var times = window.Select(a => Clock.Seconds(a.At - from)).ToList();
            var nodes = window.Select(a => a.Node).Distinct(StringComparer.Ordinal).ToList();
            var handoverGap = nodes.Count > 1 ? HandoverGap(window) - 1 / plan.Rate : (double?)null;
            var longestPause = nodes.Count > 1 ? LongestPause(window) - 1 / plan.Rate : (double?)null;
            var overshoot = RateCheck.WorstOvershoot(times, plan.Rate, plan.Burst);
            // Calls that waited for a new connection reach the downstream together when the connections open, however
            // the node spaced them: the worst window counts its arrivals that came on a connection of their own.
            var fresh = window.Where((a, k) => a.NewConnection && times[k] >= overshoot.End - overshoot.Seconds && times[k] <= overshoot.End).Count();
            // The same check on the times the nodes started the calls (their tokens), which no network or probe delay
            // moves: the node's own pacing. Null when a call came without the stamp (an older node).
            var starts = window.All(a => a.StartedAt != 0) ? window.Select(a => Clock.Seconds(a.StartedAt - from)).Order().ToList() : null;
            var startsOvershoot = starts is null ? null : RateCheck.WorstOvershoot(starts, plan.Rate, plan.Burst);
            results.Add(new GroupResult(plan, from, seconds, times.Count, overshoot, RateCheck.SteadyRate(times, plan.Burst, SettleSeconds(seconds)),
                nodes.Count > 1, handoverGap, longestPause, window.Count >= plan.Backlog - 1, fresh, startsOvershoot));
        }

        var messages = results.Sum(r => r.Arrivals);
        var configured = plans.Sum(p => p.Rate);
        Console.WriteLine();
        Console.WriteLine($"checked {results.Count} groups, {messages} arrivals inside their windows ({all.Count} arrivals in all, {redelivered} with attempt > 1)");
        Console.WriteLine($"throughput: {messages / seconds:0} msg/s delivered against {configured:0} msg/s configured (+ bursts): {messages / (configured * seconds + plans.Sum(p => p.Burst)):0.000} of the allowance");
        ReportDelivery(all, plans, opened);
        var silent = results.Where(r => r.Arrivals == 0).ToList();
        if (silent.Count > 0)
        {
            Console.WriteLine($"FAIL: {silent.Count} groups delivered nothing after opening, e.g. {silent[0].Plan.Id}");
            failed = true;
        }

        var drained = results.Where(r => r.Drained).ToList();
        if (drained.Count > 0)
        {
            Console.WriteLine($"FAIL: {drained.Count} groups ran out of backlog inside their window, so their rate is not measurable, e.g. {drained[0].Plan.Id}");
            failed = true;
        }

        var moved = results.Where(r => r.Moved).ToList();
        var stayed = results.Where(r => !r.Moved).ToList();
        if (moved.Count == 0)
        {
            failed |= Report("all groups", stayed, stalls, strict);
        }
        else
        {
            failed |= Report("groups that stayed on one node", stayed, stalls, strict);
            failed |= Report("groups that moved (arrivals name two nodes)", moved, stalls, strict);
            var gaps = new Percentiles(moved.Select(r => r.HandoverGap!.Value * 1000));
            Console.WriteLine($"  handover gap (last arrival from the old node to first from the new, less 1/rate): p50 {gaps.At(0.5):0} ms, p99 {gaps.At(0.99):0} ms, max {gaps.Max:0} ms");

            // A group moved twice, or paused again on its new node, shows here and not in the handover gap.
            var pauses = new Percentiles(moved.Select(r => r.LongestPause!.Value * 1000));
            Console.WriteLine($"  longest pause between any two arrivals, less 1/rate: p50 {pauses.At(0.5):0} ms, p99 {pauses.At(0.99):0} ms, max {pauses.Max:0} ms");
        }

        return failed ? 1 : 0;
    }

    private static double SettleSeconds(double seconds) => Math.Min(5, seconds / 4);

    private static bool Report(string title, List<GroupResult> results, StallMonitor stalls, bool strict)
    {
        if (results.Count == 0)
        {
            return false;
        }

        var failed = false;
        Console.WriteLine();
        Console.WriteLine($"{title}: {results.Count} groups, {results.Sum(r => r.Arrivals)} arrivals");
        var worst = results.MaxBy(r => r.Overshoot.Excess)!;
        var over = results.Count(r => r.Overshoot.Excess > 1e-9);
        var overshootMet = worst.Overshoot.Excess <= OvershootTarget + 1e-9;
        Console.WriteLine($"  (i) worst overshoot: {Signed.Format(worst.Overshoot.Excess)} messages beyond burst + rate x T ({worst.Plan.Id}, {worst.Plan.Rates}: {worst.Overshoot.Count} arrivals in {worst.Overshoot.Seconds * 1000:0.0} ms)");
        Console.WriteLine($"      groups with any overshoot > 0: {over}; overshoot distribution p50 {Signed.Format(new Percentiles(results.Select(r => r.Overshoot.Excess)).At(0.5))}, p99 {Signed.Format(new Percentiles(results.Select(r => r.Overshoot.Excess)).At(0.99))}");
        Console.WriteLine($"      worst window at {worst.Overshoot.End - worst.Overshoot.Seconds:0.000}..{worst.Overshoot.End:0.000} s after its group opened; {StallNear(worst, stalls)}");
        Console.WriteLine($"      by burst, worst overshoot: {BandSummary(results, r => r.Plan.Burst, [(1, 2), (2, 4), (4, 11)], r => r.Overshoot.Excess, max: true)}");
        // Overshoot / rate is the timing error that would explain it: how much closer together the window's arrivals are
        // than the node can have started them. Tens of ms at 50/s is delivery jitter; a second at 0.5/s is not.
        var inTime = results.MaxBy(r => r.Overshoot.Excess / r.Plan.Rate)!;
        Console.WriteLine($"      as time (overshoot / rate): worst {inTime.Overshoot.Excess / inTime.Plan.Rate * 1000:0} ms ({inTime.Plan.Id}, {inTime.Plan.Rates})");
        var stamped = results.All(r => r.StartsOvershoot is not null);
        var startsOver = stamped ? results.Where(r => r.StartsOvershoot!.Excess > StartsTolerance).ToList() : [];
        if (stamped)
        {
            // A started call takes one token, so this is at most a rounding error whatever the machine's load; arrivals
            // above the bound whose starts are within it were bunched on the way.
            var worstStart = results.MaxBy(r => r.StartsOvershoot!.Excess)!;
            Console.WriteLine($"  (i') the nodes' starts (ClusterQueue-Started-At), same check: worst {Signed.Format(worstStart.StartsOvershoot!.Excess)} ({worstStart.Plan.Id}, {worstStart.StartsOvershoot.Count} starts in {worstStart.StartsOvershoot.Seconds * 1000:0.0} ms); groups over {StartsTolerance}: {startsOver.Count}");
        }

        var beyondJitter = results.Where(r => r.Overshoot.Excess - r.Plan.Rate * JitterTolerance > OvershootTarget + 1e-9).ToList();
        Console.WriteLine($"      target <= {OvershootTarget} message: {(overshootMet ? "met" : "MISSED")}; beyond {JitterTolerance * 1000:0} ms of arrival jitter: {beyondJitter.Count} groups");
        if (beyondJitter.Count > 0)
        {
            // With the nodes' stamps the verdict is theirs: arrivals above the bound whose starts keep it were bunched
            // between the node and the probe's handler, which the start → arrival line measures. Without stamps (an
            // older node) the arrivals are all there is to judge by.
            var example = beyondJitter.MaxBy(r => r.Overshoot.Excess - r.Plan.Rate * JitterTolerance)!;
            Console.WriteLine($"{(stamped ? "NOTE" : "FAIL")}: {beyondJitter.Count} groups got more than burst + rate x (T + {JitterTolerance * 1000:0} ms) + {OvershootTarget}, e.g. {example.Plan.Id} ({example.Plan.Rates}): {example.Overshoot.Count} arrivals in {example.Overshoot.Seconds * 1000:0.0} ms");
            foreach (var r in beyondJitter.OrderByDescending(r => r.Overshoot.Excess - r.Plan.Rate * JitterTolerance).Take(10))
            {
                var startsFigure = r.StartsOvershoot is { } s ? $"; its starts {Signed.Format(s.Excess)}" : "";
                Console.WriteLine($"      {r.Plan.Id} ({r.Plan.Rates}): {Signed.Format(r.Overshoot.Excess)} at {r.Overshoot.End - r.Overshoot.Seconds:0.000}..{r.Overshoot.End:0.000} s{startsFigure}; {StallNear(r, stalls)}");
            }

            failed |= !stamped;
        }

        if (startsOver.Count > 0)
        {
            var example = startsOver.MaxBy(r => r.StartsOvershoot!.Excess)!;
            Console.WriteLine($"FAIL: {startsOver.Count} groups' starts broke burst + rate x T, e.g. {example.Plan.Id} ({example.Plan.Rates}): {Signed.Format(example.StartsOvershoot!.Excess)}, {example.StartsOvershoot.Count} starts in {example.StartsOvershoot.Seconds * 1000:0.0} ms");
            failed = true;
        }

        failed |= strict && !overshootMet;

        var measured = results.Where(r => r.SteadyRate is not null).ToList();
        if (measured.Count > 0)
        {
            var errors = measured.Select(r => r.SteadyRate!.Value / r.Plan.Rate - 1).ToList();
            var spread = new Percentiles(errors.Select(e => e * 100));
            var worstShort = measured.MinBy(r => r.SteadyRate!.Value / r.Plan.Rate)!;
            var worstAbs = measured.MaxBy(r => Math.Abs(r.SteadyRate!.Value / r.Plan.Rate - 1))!;
            var within = errors.Count(e => Math.Abs(e) <= ShortfallTarget);
            Console.WriteLine($"  (ii) steady rate after the burst vs configured, from the first post-burst arrival {SettleSeconds(results[0].Seconds):0.#} s after opening, {measured.Count} groups with 4+ such arrivals (least-squares slope):");
            Console.WriteLine($"      relative error %: min {Signed.Format(spread.At(0), 2)}  p1 {Signed.Format(spread.At(0.01), 2)}  p50 {Signed.Format(spread.At(0.5), 2)}  p99 {Signed.Format(spread.At(0.99), 2)}  max {Signed.Format(spread.Max, 2)}");
            Console.WriteLine($"      worst shortfall: {worstShort.Plan.Id} {worstShort.Plan.Rates} ran at {worstShort.SteadyRate:0.000}/s ({Signed.Format((worstShort.SteadyRate!.Value / worstShort.Plan.Rate - 1) * 100, 2)}%)");
            Console.WriteLine($"      by rate band, mean error %: {BandSummary(measured, r => r.Plan.Rate, [(0, 1), (1, 5), (5, 20), (20, 51)], Error)}");
            Console.WriteLine($"      by burst, mean error %:     {BandSummary(measured, r => r.Plan.Burst, [(1, 2), (2, 4), (4, 11)], Error)}");
            // A burst-1 bucket is full while its actor waits for a timer and a lease, so that time is lost every message:
            // 1/measured - 1/configured is the actor's overhead per message.
            var burstOne = measured.Where(r => r.Plan.Burst == 1).Select(r => (1 / r.SteadyRate!.Value - 1 / r.Plan.Rate) * 1000).ToList();
            if (burstOne.Count > 0)
            {
                var overhead = new Percentiles(burstOne);
                Console.WriteLine($"      burst-1 groups, time lost per message (1/measured - 1/rate): p50 {overhead.At(0.5):0.0} ms, p90 {overhead.At(0.9):0.0} ms, max {overhead.Max:0.0} ms ({burstOne.Count} groups)");
            }

            var shortfallMet = within == measured.Count;
            Console.WriteLine($"      within +-{ShortfallTarget * 100:0}%: {within} of {measured.Count} groups; target every group: {(shortfallMet ? "met" : $"MISSED (worst {worstAbs.Plan.Id}, {Signed.Format((worstAbs.SteadyRate!.Value / worstAbs.Plan.Rate - 1) * 100, 2)}%)")}");
            failed |= strict && !shortfallMet;
        }

        return failed;
    }

    private static double Error(GroupResult r) => (r.SteadyRate!.Value / r.Plan.Rate - 1) * 100;

    private static string BandSummary(List<GroupResult> results, Func<GroupResult, double> key, (double Low, double High)[] bands, Func<GroupResult, double> figure, bool max = false)
    {
        var text = new StringBuilder();
        foreach (var (low, high) in bands)
        {
            var band = results.Where(r => key(r) >= low && key(r) < high).ToList();
            if (band.Count > 0)
            {
                var value = max ? band.Max(figure) : band.Average(figure);
                text.Append(CultureInfo.InvariantCulture, $"[{low:0.#},{high:0.#}): {Signed.Format(value, 2)} ({band.Count})  ");
            }
        }

        return text.ToString().TrimEnd();
    }

    // Calls that reach the probe while it is stalled are all stamped when it resumes: a bunch at the downstream that the
    // node did not send as one.
    private static string StallNear(GroupResult result, StallMonitor stalls)
    {
        var end = result.Opened + Clock.Ticks(result.Overshoot.End);
        var start = end - Clock.Ticks(result.Overshoot.Seconds);
        double? Longest(IReadOnlyList<(long At, double Ms)> found)
        {
            var near = found.Where(s => s.At >= start - Clock.Ticks(0.005) && s.At <= end + Clock.Ticks(0.005)).ToList();
            return near.Count == 0 ? null : near.Max(s => s.Ms);
        }

        var stall = Longest(stalls.Stalls) is { } ms ? $"a probe stall of {ms:0} ms ended in it" : "no probe stall of 5+ ms ended in it";
        var wait = Longest(stalls.PoolWaits) is { } waited ? $"a probe thread-pool wait of {waited:0} ms" : "no thread-pool wait of 5+ ms";
        return $"{stall}; {wait}; {result.FreshInWorst} of its {result.Overshoot.Count} arrivals on new connections";
    }

    // How long a call took from the node's token to the probe's handler: the node's send, the network, the probe's
    // accept and scheduling. The first seconds after the groups open carry every group's burst at once.
    private static void ReportDelivery(IReadOnlyList<Arrival> all, IReadOnlyList<GroupPlan> plans, long[] opened)
    {
        var openedAt = OpenedAt(plans, opened);
        var stamped = all.Where(a => a.StartedAt != 0 && openedAt.TryGetValue(a.Group, out var at) && a.At >= at).ToList();
        if (stamped.Count == 0)
        {
            return;
        }

        string Figures(IEnumerable<Arrival> arrivals)
        {
            var delays = new Percentiles(arrivals.Select(a => Clock.Milliseconds(a.At - a.StartedAt)));
            return $"p50 {delays.At(0.5):0.0}, p99 {delays.At(0.99):0.0}, max {delays.Max:0.0} ms";
        }

        var opening = stamped.Where(a => a.At - openedAt[a.Group] < Clock.Ticks(2)).ToList();
        Console.WriteLine($"start -> arrival (the node's token to the probe's handler): {Figures(stamped)}; in the first 2 s after a group opened{(opening.Count > 0 ? $" ({opening.Count} calls): {Figures(opening)}" : ": none")}");
    }

    private static void ReportStalls(StallMonitor stalls, long from, long to)
    {
        Console.WriteLine();
        var seconds = Clock.Seconds(to - from);
        Console.WriteLine($"probe stalls during the run (a 1 ms sleep that took 5+ ms longer): {Summary(stalls.Stalls)} in {seconds:0} s");
        Console.WriteLine($"probe thread-pool waits (a work item queued every 10 ms that ran 5+ ms late): {Summary(stalls.PoolWaits)}");

        string Summary(IReadOnlyList<(long At, double Ms)> found)
        {
            var inRun = found.Where(s => s.At >= from && s.At <= to).Select(s => s.Ms).ToList();
            return $"{inRun.Count(ms => ms >= 5)} of 5+ ms, {inRun.Count(ms => ms >= 20)} of 20+ ms, longest {(inRun.Count > 0 ? inRun.Max() : 0):0.0} ms";
        }
    }

    // The longest silence across a change of node; the caller takes off the group's own spacing, 1/rate.
    private static double LongestPause(List<Arrival> window)
    {
        var longest = 0.0;
        for (var k = 1; k < window.Count; k++)
        {
            longest = Math.Max(longest, Clock.Seconds(window[k].At - window[k - 1].At));
        }

        return longest;
    }

    private static double HandoverGap(List<Arrival> window)
    {
        var longest = 0.0;
        for (var k = 1; k < window.Count; k++)
        {
            if (window[k].Node != window[k - 1].Node)
            {
                longest = Math.Max(longest, Clock.Seconds(window[k].At - window[k - 1].At));
            }
        }

        return longest;
    }

    private static Dictionary<string, long> OpenedAt(IReadOnlyList<GroupPlan> plans, long[] opened) =>
        plans.Select((p, i) => (p.Id, At: opened[i])).ToDictionary(x => x.Id, x => x.At, StringComparer.Ordinal);

    /// <summary>Every arrival as CSV (seconds after its group opened; negative for the parked call) for a closer look.</summary>
    private static async Task DumpAsync(string path, IReadOnlyList<GroupPlan> plans, long[] opened, long? killedAt, IReadOnlyList<Arrival> arrivals)
    {
        var openedAt = OpenedAt(plans, opened);
        var first = opened.Min();
        // seconds_after_first_open puts every group on one time line, the SIGTERM's below.
        var text = new StringBuilder("group,rate,burst,seconds_after_open,node,attempt,message_id,seconds_after_first_open,new_connection,started_seconds_after_open\n");
        var byId = plans.ToDictionary(p => p.Id, StringComparer.Ordinal);
        foreach (var a in arrivals.OrderBy(a => a.Group, StringComparer.Ordinal).ThenBy(a => a.At))
        {
            if (byId.TryGetValue(a.Group, out var plan))
            {
                text.Append(CultureInfo.InvariantCulture, $"{a.Group},{plan.Rate},{plan.Burst},{Clock.Seconds(a.At - openedAt[a.Group]):0.000000},{a.Node},{a.Attempt},{a.MessageId},{Clock.Seconds(a.At - first):0.000000},{(a.NewConnection ? 1 : 0)},{(a.StartedAt == 0 ? "" : Clock.Seconds(a.StartedAt - openedAt[a.Group]).ToString("0.000000", CultureInfo.InvariantCulture))}\n");
            }
        }

        if (killedAt is { } killed)
        {
            text.Append(CultureInfo.InvariantCulture, $"# SIGTERM at {Clock.Seconds(killed - first):0.000000} s after the first group opened\n");
        }

        await File.WriteAllTextAsync(path, text.ToString());
    }

    private static async Task<double?> IngestAsync(IReadOnlyList<GroupPlan> plans, string[] nodeUrls)
    {
        // Round robin over groups, so every group has its first message (the one that parks) early on.
        var order = new List<string>();
        var maxBacklog = plans.Max(p => p.Backlog);
        for (var k = 0; k < maxBacklog; k++)
        {
            foreach (var plan in plans)
            {
                if (k < plan.Backlog)
                {
                    order.Add(plan.Id);
                }
            }
        }

        using var client = Load.NewClient(Workers);
        var started = Clock.Now;
        var failures = await Pool.RunAsync(order.Count, Workers, async i =>
        {
            using var content = new StringContent($"{{\"seq\":{i}}}", Encoding.UTF8, "application/json");
            using var response = await client.PostAsync($"{nodeUrls[i % nodeUrls.Length]}/hooks/{order[i]}", content);
            return response.IsSuccessStatusCode;
        });
        if (failures > 0)
        {
            Console.WriteLine($"FAIL: {failures} of {order.Count} ingest requests were refused");
            return null;
        }

        return Clock.Seconds(Clock.Now - started);
    }

    /// <summary>Releases each group's parked call once a later call has arrived, noting when, until all are released or it is stopped.</summary>
    private static async Task ReleaseWhenAppliedAsync(Downstream downstream, IReadOnlyList<GroupPlan> plans, long[] opened, long[] applied, CancellationToken stop)
    {
        var waiting = Enumerable.Range(0, plans.Count).ToList();
        while (waiting.Count > 0 && !stop.IsCancellationRequested)
        {
            waiting.RemoveAll(i =>
            {
                var latest = downstream.LatestArrival(plans[i].Id);
                if (latest < opened[i])
                {
                    return false;
                }

                applied[i] = latest;
                downstream.Release(plans[i].Id);
                return true;
            });
            await Task.Delay(10, CancellationToken.None);
        }
    }

    /// <summary>What each node says about the first few groups that started nothing after their PATCH.</summary>
    private static async Task DescribeStuckAsync(NodeApi[] nodes, IReadOnlyList<GroupPlan> plans, List<int> stuck)
    {
        foreach (var i in stuck.Take(3))
        {
            foreach (var node in nodes)
            {
                string stats;
                try
                {
                    stats = await node.GetAsync($"/v1/groups/{plans[i].Id}/stats");
                }
                catch (HttpRequestException ex)
                {
                    stats = ex.Message;
                }

                Console.WriteLine($"  {plans[i].Id} ({plans[i].Rates}) on {node.BaseUrl}: {stats}");
            }
        }
    }

    private static async Task<bool> WaitForParkedAsync(Downstream downstream, int groups)
    {
        var deadline = Clock.Now + Clock.Ticks(60);
        while (Clock.Now < deadline)
        {
            var parked = downstream.Snapshot().Select(a => a.Group).Distinct(StringComparer.Ordinal).Count();
            if (parked >= groups)
            {
                return true;
            }

            await Task.Delay(100);
        }

        Console.WriteLine($"FAIL: after 60 s only {downstream.Snapshot().Select(a => a.Group).Distinct(StringComparer.Ordinal).Count()} of {groups} groups had started their first message");
        return false;
    }

    // Shards spread over the members a few renewals after they join; a run that started before would see moves that are
    // not the SIGTERM's.
    /// <summary>Until every node sees every other as an Up member, for 2 s: shards are placed as groups get work, after this.</summary>
    private static async Task<bool> WaitForMembersAsync(NodeApi[] nodes)
    {
        var deadline = Clock.Now + Clock.Ticks(90);
        var stableSince = 0L;
        while (Clock.Now < deadline)
        {
            var members = await Task.WhenAll(nodes.Select(n => n.GaugeAsync("clusterqueue_cluster_members")));
            var balanced = members.All(m => m == nodes.Length);
            if (!balanced)
            {
                stableSince = 0;
            }
            else if (stableSince == 0)
            {
                stableSince = Clock.Now;
            }
            else if (Clock.Seconds(Clock.Now - stableSince) >= 2)
            {
                Console.WriteLine($"members seen by each node: {string.Join(", ", members)}");
                return true;
            }

            await Task.Delay(250);
        }

        Console.WriteLine("FAIL: the nodes did not all see one another as members within 90 s");
        return false;
    }

    private sealed record GroupResult(GroupPlan Plan, long Opened, double Seconds, int Arrivals, Overshoot Overshoot, double? SteadyRate, bool Moved, double? HandoverGap, double? LongestPause, bool Drained, int FreshInWorst, Overshoot? StartsOvershoot);
}
