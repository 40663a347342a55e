using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// This node's side of the shard protocol (docs/cluster.md). Every <c>RenewInterval</c>, or at once when another node
/// announces a change:
/// <code>
///   heartbeat ─▶ renew my leases ─▶ lost any? stop them now ─▶ rendezvous over live nodes ─▶ hand over what moved away
///                                                                                      └──▶ acquire what is free and mine
/// </code>
/// A watchdog, re-armed by every successful renewal, stops every actor at LeaseTtl − SafetyMargin after the last
/// renewal began: a node cut off from the database is quiet before any survivor can acquire its shards.
/// </summary>
public sealed class ClusterCoordinator : BackgroundService, IHostedLifecycleService
{
    private readonly ShardLeaseStore _leases;
    private readonly ShardOwnership _ownership;
    private readonly GroupDispatcher _dispatcher;
    private readonly NodeIdentity _node;
    private readonly ClusterOptions _options;
    private readonly NodeReadiness _readiness;
    private readonly TimeProvider _time;
    private readonly ILogger<ClusterCoordinator> _logger;
    private readonly SemaphoreSlim _poke = new(0, 1);
    private readonly Lock _gate = new();
    private readonly Dictionary<int, Task> _handovers = [];
    private readonly ITimer _watchdog;
    private bool _joined;
    private Task? _left;

    public ClusterCoordinator(
        ShardLeaseStore leases,
        ShardOwnership ownership,
        GroupDispatcher dispatcher,
        NodeIdentity node,
        IOptions<ClusterOptions> options,
        NodeReadiness readiness,
        TimeProvider time,
        ILogger<ClusterCoordinator> logger)
    {
        _leases = leases;
        _ownership = ownership;
        _dispatcher = dispatcher;
        _node = node;
        _options = options.Value;
        _readiness = readiness;
        _time = time;
        _logger = logger;
        _watchdog = time.CreateTimer(_ => StopEverything(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        readiness.RequireJoin();
    }

    /// <summary>Runs the next round now: another node joined, left or released a shard.</summary>
    public void Poke()
    {
        try
        {
            _poke.Release();
        }
        catch (SemaphoreFullException)
        {
            // A round is already due.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!_joined)
                {
                    await _leases.EnsureShardsAsync(_ownership.Shards, stoppingToken);
                }

                await RoundAsync(stoppingToken);
                failures = 0;
                await WaitForNextRoundAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (InvalidOperationException ex) when (ex.Message.StartsWith("ClusterQueue:", StringComparison.Ordinal))
            {
                // A configuration conflict with the cluster (the shard count): this node must not take part.
                Log.ConfigurationConflict(_logger, ex);
                throw;
            }
            catch (Exception ex)
            {
                // Retry well inside the watchdog's deadline, so one failed round does not stop a healthy node.
                var delay = TimeSpan.FromMilliseconds(Math.Min(_options.RenewInterval.TotalMilliseconds, 100 * Math.Pow(2, failures++))
                    * (0.5 + Random.Shared.NextDouble() / 2));
                Log.RoundFailed(_logger, delay, ex);
                await Task.Delay(delay, _time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Until the renew interval has passed or someone pokes.</summary>
    private async Task WaitForNextRoundAsync(CancellationToken stoppingToken)
    {
        using var interval = new CancellationTokenSource(_options.RenewInterval, _time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(interval.Token, stoppingToken);
        try
        {
            await _poke.WaitAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // The interval passed.
        }
    }

    private async Task RoundAsync(CancellationToken stoppingToken)
    {
        // The lease the database grants runs from when it executes the renewal, which is after this moment: a
        // deadline counted from here is conservative whatever the network delay.
        var began = _time.GetUtcNow();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        // A round that cannot finish before the watchdog would fire is moot: give up then, not earlier, so a slow
        // database under load does not fail rounds that would still have renewed in time.
        deadline.CancelAfter(_options.LeaseTtl - _options.SafetyMargin);
        var token = deadline.Token;

        var live = await _leases.HeartbeatAsync(_node.Id, _ownership.Session, token);
        var renewed = await _leases.RenewAsync(_node.Id, _ownership.Session, token);
        Lose([.. _ownership.Held.Where(shard =>
            !_ownership.TryGetGrant(shard, out var grant) || !renewed.TryGetValue(shard, out var epoch) || epoch != grant.Epoch)]);

        _watchdog.Change(Remaining(began + _options.LeaseTtl - _options.SafetyMargin), Timeout.InfiniteTimeSpan);
        await ReadoptAsync(renewed, token);

        var members = live.Contains(_node.Id, StringComparer.Ordinal) ? live : [.. live, _node.Id];
        var mine = ShardMap.ShardsOf(_node.Id, members, _ownership.Shards);
        StartHandover([.. _ownership.Held.Where(shard => !mine.Contains(shard))]);

        List<int> wanted;
        lock (_gate)
        {
            wanted = [.. mine.Where(s => !_ownership.TryGetGrant(s, out _) && !_handovers.ContainsKey(s))];
        }

        if (wanted.Count > 0)
        {
            await AcquireAsync(wanted, token);
        }

        if (!_joined)
        {
            _joined = true;
            _readiness.MarkJoined();
            Log.Joined(_logger, _node.Id, members.Count, _ownership.Held.Count);
        }
    }

    /// <summary>
    /// Leases the database still gives this session but the node stopped (its watchdog fired during an outage that
    /// ended before they expired): nobody else can have held them, so they are taken back at the same epoch. Their
    /// groups' buckets were lost with the actors, so they start empty rather than risk a second burst.
    /// </summary>
    private async Task ReadoptAsync(IReadOnlyDictionary<int, long> renewed, CancellationToken token)
    {
        var now = _time.GetUtcNow();
        var readopted = new HashSet<int>();
        lock (_gate)
        {
            foreach (var (shard, epoch) in renewed)
            {
                if (!_ownership.TryGetGrant(shard, out _) && !_handovers.ContainsKey(shard))
                {
                    _ownership.Grant(new ShardGrant(shard, epoch, now, new Dictionary<string, SavedBucket>()));
                    readopted.Add(shard);
                }
            }
        }

        if (readopted.Count > 0)
        {
            Log.Readopted(_logger, readopted.Count);
            await _dispatcher.WakeShardsAsync(readopted, token);
        }
    }

    private async Task AcquireAsync(List<int> wanted, CancellationToken token)
    {
        var acquired = await _leases.AcquireAsync(_node.Id, _ownership.Session, wanted, token);
        if (acquired.Count == 0)
        {
            return;
        }

        var shards = acquired.Select(a => a.Shard).ToHashSet();
        var saved = await _leases.TakeBucketsAsync(shards, token);
        var now = _time.GetUtcNow();
        foreach (var shard in acquired)
        {
            var buckets = saved
                .Where(b => b.Shard == shard.Shard)
                .ToDictionary(b => b.GroupId, b => new SavedBucket(b.Tokens, now - b.Age), StringComparer.Ordinal);
            _ownership.Grant(new ShardGrant(shard.Shard, shard.Epoch, now - shard.QuietFor, buckets));
        }

        var takenOver = acquired.Where(a => a.QuietFor is not null).ToList();
        if (takenOver.Count > 0)
        {
            Log.TookOver(_logger, takenOver.Count, takenOver.Min(a => a.QuietFor!.Value));
        }

        Log.Acquired(_logger, acquired.Count, _ownership.Held.Count);
        await _dispatcher.WakeShardsAsync(shards, token);
    }

    /// <summary>Hands shards that moved away over, together: stop starting, drain (bounded), save the buckets, release.</summary>
    private void StartHandover(IReadOnlyCollection<int> shards)
    {
        lock (_gate)
        {
            var grants = new List<ShardGrant>();
            foreach (var shard in shards)
            {
                if (!_handovers.ContainsKey(shard) && _ownership.TryGetGrant(shard, out var grant))
                {
                    _ownership.Revoke(shard);
                    grants.Add(grant);
                }
            }

            if (grants.Count == 0)
            {
                return;
            }

            // On the thread pool, not inline: a handover that completed synchronously would remove its entries from
            // _handovers before they were added below, leaving the shards marked as moving for good.
            var handover = Task.Run(() => HandOverAsync(grants, _options.HandoverTimeout));
            foreach (var grant in grants)
            {
                _handovers[grant.Shard] = handover;
            }
        }
    }

    private async Task HandOverAsync(List<ShardGrant> grants, TimeSpan timeout)
    {
        try
        {
            // Every shard drains at once, so a node that leaves waits one timeout at most, not one per shard.
            var buckets = await _dispatcher.ReleaseShardsAsync(grants.Select(g => g.Shard).ToHashSet(), timeout);
            var fences = grants.Select(g => new ShardFence(g.Shard, g.Epoch, _ownership.Session)).ToList();
            var released = await _leases.ReleaseAsync(_ownership.Session, fences, buckets, CancellationToken.None);
            Log.HandedOver(_logger, released.Count, grants.Count, buckets.Count);
        }
        catch (Exception ex)
        {
            // The leases stay until they expire; the next owners then take them over as after a failure.
            Log.HandoverFailed(_logger, grants.Count, ex);
        }
        finally
        {
            lock (_gate)
            {
                foreach (var grant in grants)
                {
                    _handovers.Remove(grant.Shard);
                }
            }
        }
    }

    private void Lose(IReadOnlyCollection<int> shards)
    {
        var lost = shards.Where(_ownership.Revoke).ToHashSet();
        if (lost.Count > 0)
        {
            Log.Lost(_logger, lost.Count);
            _dispatcher.AbortShards(lost);
        }
    }

    /// <summary>The watchdog fired: no renewal for LeaseTtl − SafetyMargin. Stop every actor before the leases can expire.</summary>
    private void StopEverything()
    {
        var held = _ownership.Held;
        if (held.Count == 0)
        {
            return;
        }

        Log.WatchdogFired(_logger, held.Count);
        Lose(held);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The graceful stop runs here, before any service's StopAsync, so the web server still takes requests meanwhile:
    /// ingress that arrives during the drain is made durable and woken on the shards' new owners.
    /// </summary>
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            // Started off this lock: the leave takes it again for the handovers.
            return _left ??= Task.Run(() => LeaveAsync(cancellationToken), CancellationToken.None);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await StoppingAsync(cancellationToken);
        await base.StopAsync(cancellationToken);
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A graceful stop: leave, hand every shard over at once, release, forget this member.</summary>
    private async Task LeaveAsync(CancellationToken cancellationToken)
    {
        _readiness.MarkDraining();
        await base.StopAsync(cancellationToken);
        try
        {
            await _leases.LeaveAsync(_node.Id, _ownership.Session, cancellationToken);
            StartHandover(_ownership.Held);
            Task[] handovers;
            lock (_gate)
            {
                handovers = [.. _handovers.Values.Distinct()];
            }

            await Task.WhenAll(handovers);
            await _leases.ForgetAsync(_node.Id, _ownership.Session, cancellationToken);
            Log.Left(_logger, _node.Id);
        }
        catch (Exception ex)
        {
            // The leases expire by themselves; the survivors take over after the TTL.
            Log.LeaveFailed(_logger, ex);
        }
        finally
        {
            await _watchdog.DisposeAsync();
        }
    }

    private TimeSpan Remaining(DateTimeOffset at)
    {
        var left = at - _time.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }
}
