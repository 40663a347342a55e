using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Hosting.Logging;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace ClusterQueue.Tests.Processing;

public sealed class NodeAkkaLoggerTests
{
    private const string LeaseWait = "groups: Failed to get lease for shard id [17]. Retry in 00:00:00.2000000";

    [Fact]
    public void LeaseWait_WithoutACause_IsLoggedAtDebugLevel()
    {
        var logged = NodeAkkaLogger.Downgraded(new Error(null, "akka://clusterqueue/system/sharding/groups/17", typeof(NodeAkkaLoggerTests), LeaseWait));

        Assert.IsType<Debug>(logged);
        Assert.Equal(LeaseWait, logged.Message.ToString());
    }

    [Fact]
    public void LeaseFailureWithACause_AndOtherErrors_StayErrors()
    {
        var withCause = new Error(new TimeoutException("no answer"), "shard", typeof(NodeAkkaLoggerTests), LeaseWait);
        var other = new Error(null, "shard", typeof(NodeAkkaLoggerTests), "Something else failed");
        var warning = new Warning("shard", typeof(NodeAkkaLoggerTests), LeaseWait);

        Assert.Same(withCause, NodeAkkaLogger.Downgraded(withCause));
        Assert.Same(other, NodeAkkaLogger.Downgraded(other));
        Assert.Same(warning, NodeAkkaLogger.Downgraded(warning));
    }

    [Fact]
    public async Task ActorSystem_WithTheLogger_WritesALeaseWaitAtDebugAndOtherErrorsAtError()
    {
        using var captured = new CapturedLogs();
        using var factory = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(captured));
        var setup = BootstrapSetup.Create()
            .WithConfig(ConfigurationFactory.ParseString($"akka.loggers = [\"{typeof(NodeAkkaLogger).AssemblyQualifiedName}\"]"))
            .And(new LoggerFactorySetup(factory));
        var system = ActorSystem.Create(nameof(NodeAkkaLoggerTests), setup);
        try
        {
            var log = Logging.GetLogger(system, "shard");
            log.Error("groups: Failed to get lease for shard id [{0}]. Retry in {1}", 17, TimeSpan.FromMilliseconds(200));
            log.Error("groups: a real failure");

            await Eventually.TrueAsync(() => captured.Entries.Any(e => e.Message.Contains("a real failure", StringComparison.Ordinal)), "the second error logged", TimeSpan.FromSeconds(10));
            var wait = Assert.Single(captured.Entries, e => e.Message.Contains("Failed to get lease for shard id [17]", StringComparison.Ordinal));
            Assert.Equal(LogLevel.Debug, wait.Level);
            Assert.Equal(LogLevel.Error, Assert.Single(captured.Entries, e => e.Message.Contains("a real failure", StringComparison.Ordinal)).Level);
        }
        finally
        {
            await system.Terminate();
        }
    }
}
