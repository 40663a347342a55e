using System.Diagnostics;
using OpenTelemetry.Trace;

namespace ClusterQueue.Node.Observability;

/// <summary>
/// Decides for spans that start a trace: requests and deliveries do, a client call made outside any trace does not.
/// Those are the node's own background work (lease renewals, commits, polling SQS), a trace every few milliseconds
/// that says nothing about a message. Used under a parent-based sampler, so a span inside a trace always follows it.
/// </summary>
internal sealed class RequestRootSampler : Sampler
{
    private static readonly SamplingResult Record = new(SamplingDecision.RecordAndSample);
    private static readonly SamplingResult Drop = new(SamplingDecision.Drop);

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters) =>
        samplingParameters.Kind is ActivityKind.Client or ActivityKind.Internal ? Drop : Record;
}
