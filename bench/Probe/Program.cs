// Benchmark probe: drives a node (or the bare Kestrel baseline) with load and hosts its own recording downstream, so
// send times and arrival times come from one monotonic clock (Stopwatch) in one process.
//   Probe latency --node URL --bare URL --listen PORT [--seconds 20] [--e2e-rate 200]
//   Probe rate --nodes URL[,URL...] --listen PORT [--seconds 60] [--groups 1000] [--token T] [--kill-pid PID]
// Exit codes: 0 measured (targets are reported, not enforced unless --strict), 1 a correctness check failed, 2 usage.
using ClusterQueue.Bench.Probe;

var options = ProbeArgs.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: Probe latency --node URL --bare URL --listen PORT [--seconds S] [--e2e-rate R] [--strict]");
    Console.Error.WriteLine("       Probe rate --nodes URL[,URL...] --listen PORT [--seconds S] [--groups G] [--token T] [--kill-pid PID] [--strict]");
    return 2;
}

return options.Command switch
{
    "latency" => await LatencyBenchmark.RunAsync(options),
    "rate" => await RateBenchmark.RunAsync(options),
    _ => 2,
};
