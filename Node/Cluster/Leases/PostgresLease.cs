using Akka.Actor;
using Akka.Configuration;
using Akka.Coordination;
using Akka.DependencyInjection;
using ClusterQueue.Node.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace ClusterQueue.Node.Cluster.Leases;

/// <summary>
/// Akka's distributed lock (<see cref="Lease"/>) as a row of the <c>leases</c> table: name, owner, epoch, expires_at.
/// <code>
///              acquire: no owner, expired, or already mine
///              (another owner: epoch + 1; the same owner keeps its epoch)
///   ┌──────┐ ─────────────────────────────────────────────▶ ┌────────────────┐ renew every heartbeat-interval:
///   │ free │                                                │ held (epoch e) │◀┐ mine at epoch e, more than
///   └──────┘ ◀───────────────────────────────────────────── └────────────────┘─┘ safety-margin before expiry
///                                                                                 → expires_at = now() + TTL
///      ▲       release: only if mine (the row stays: epochs      │ no renewal for TTL (by the database's clock)
///      │       never start over)                                 ▼
///      └────────────── acquire works on it directly ─────── expired
/// </code>
/// Every expiry is set and judged by the database's clock, never a node's, so nodes with skewed clocks agree on it.
/// <para>
/// The watchdog: the database grants TTL from when it runs a renewal, which is after the node sent it. The node counts
/// its own deadline from the moment it sent the last renewal that succeeded, on its monotonic clock, and ends it
/// <c>safety-margin</c> early. Past that deadline <see cref="CheckLease"/> is false and the lost callback runs, even
/// while a renewal hangs on a silent network: a node cut off from the database gives the lease up before anyone else
/// can take it.
/// </para>
/// <para>
/// Loaded by Akka's <see cref="LeaseProvider"/> from <c>lease-class</c> (see <see cref="DefaultConfig"/>). It takes its
/// database from the actor system's services (Akka.Hosting hands the node's service provider to the actor system): the
/// node's <see cref="PostgresDatabase"/>, whose schema has the table, and its pool for the cluster's statements, apart
/// from the message path's, so a renewal abandoned at its timeout never holds a connection the message path needs.
/// </para>
/// </summary>
public sealed class PostgresLease : Lease
{
    /// <summary>Where <see cref="DefaultConfig"/> puts this lease's settings; what a lease user names as its config path.</summary>
    public const string ConfigPath = "clusterqueue.lease";

    /// <summary>
    /// The lease's settings; anything not set falls back to <c>akka.coordination.lease</c>. The defaults are those of
    /// the shard leases (<c>ClusterQueue:Cluster</c>), for the same reasons.
    /// </summary>
    public static readonly Config DefaultConfig = ConfigurationFactory.ParseString(Defaults(ConfigPath) + Defaults(ShardConfigPath) + $$"""
        {{ShardConfigPath}}.release-in-background = on
        """);

    private static string Defaults(string path) =>
        $$"""
        {{path}} {
          lease-class = "{{typeof(PostgresLease).AssemblyQualifiedName}}"
          # How long a crashed holder's lease outlives it, and so how long its work waits for a successor.
          heartbeat-timeout = 10s
          # Several renewals per TTL, so one slow or failed round trip loses nothing.
          heartbeat-interval = 2s
          # One row's insert or update takes milliseconds; 5 s (Akka's default) rides out a loaded database.
          lease-operation-timeout = 5s
          # How long before the row's expiry a holder that cannot renew gives the lease up: time to stop its work, a
          # process pause, and any difference between the rates of its clock and the database's.
          safety-margin = 3s
        }

        """;

    /// <summary>The shard leases' settings: those of <see cref="ConfigPath"/>, released in the background (<see cref="Release"/>).</summary>
    public const string ShardConfigPath = "clusterqueue.shard-lease";

    /// <summary>Used when a configuration names this class without <c>safety-margin</c>: the default above.</summary>
    private static readonly TimeSpan DefaultSafetyMargin = TimeSpan.FromSeconds(3);

    private readonly NpgsqlDataSource _data;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _ttl;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _operationTimeout;
    private readonly TimeSpan _margin;
    private readonly Lock _gate = new();
    private readonly ILeaseListener? _listener;
    private readonly bool _releaseInBackground;
    private readonly PendingLeaseReleases? _pendingReleases;
    private Holding? _holding;

    /// <summary>The constructor <see cref="LeaseProvider"/> calls.</summary>
    public PostgresLease(LeaseSettings settings, ExtendedActorSystem system)
        : this(settings, ServicesOf(system))
    {
    }

    private PostgresLease(LeaseSettings settings, IServiceProvider services)
        : base(settings)
    {
        var database = services.GetService<PostgresDatabase>() ?? throw new InvalidOperationException(
            $"Lease {settings.LeaseName}: the PostgreSQL lease needs the node's PostgreSQL store (ClusterQueue:Store = postgres).");
        _data = database.ClusterSource;
        _time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        _logger = services.GetService<ILoggerFactory>()?.CreateLogger<PostgresLease>() ?? NullLogger<PostgresLease>.Instance;
        _listener = services.GetService<ILeaseListener>();
        _releaseInBackground = settings.LeaseConfig.HasPath("release-in-background") && settings.LeaseConfig.GetBoolean("release-in-background");
        _pendingReleases = services.GetService<PendingLeaseReleases>();

        var timeouts = settings.TimeoutSettings;
        _ttl = timeouts.HeartbeatTimeout;
        _interval = timeouts.HeartbeatInterval;
        _operationTimeout = timeouts.OperationTimeout;
        _margin = settings.LeaseConfig.HasPath("safety-margin") ? settings.LeaseConfig.GetTimeSpan("safety-margin") : DefaultSafetyMargin;
        if (_interval <= TimeSpan.Zero || _operationTimeout <= TimeSpan.Zero || _margin <= TimeSpan.Zero)
        {
            throw new ArgumentException(
                $"Lease {settings.LeaseName}: heartbeat-interval, lease-operation-timeout and safety-margin must be positive.");
        }

        if (_ttl - _margin < _interval * 2)
        {
            // Otherwise one late renewal would already give up a healthy lease.
            throw new ArgumentException(
                $"Lease {settings.LeaseName}: heartbeat-interval ({_interval}) must fit twice into heartbeat-timeout ({_ttl}) minus safety-margin ({_margin}).");
        }
    }

    /// <summary>
    /// The epoch this owner holds the lease at, while <see cref="CheckLease"/> is true; null otherwise. It grows by one
    /// whenever another owner takes the lease, so a write that checks it in the database is refused to a former holder.
    /// </summary>
    public long? Epoch
    {
        get
        {
            var holding = Volatile.Read(ref _holding);
            return holding is not null && Holds(holding) ? holding.Epoch : null;
        }
    }

    public override Task<bool> Acquire() => Acquire(null);

    /// <summary>
    /// True when this owner holds the lease now (it was free, expired, or already this owner's); false when another
    /// owner holds it. Fails with <see cref="LeaseException"/> when the database could not be asked, and with
    /// <see cref="LeaseTimeoutException"/> after lease-operation-timeout: the row may then be this owner's all the same,
    /// and expires unless acquired again. While the holder is leaving the cluster it asks again for a moment first (<see
    /// cref="ReleasePoll"/>).
    /// </summary>
    public override async Task<bool> Acquire(Action<Exception>? leaseLostCallback)
    {
        var sent = _time.GetTimestamp();
        var (epoch, quietFor, takenOverAt) = await RunAsync(TryAcquireAsync, "acquire", _operationTimeout, CancellationToken.None);
        if (epoch is null && await HolderIsLeavingAsync())
        {
            for (var poll = 0; epoch is null && poll < ReleasePolls; poll++)
            {
                await Task.Delay(ReleasePoll, _time);
                sent = _time.GetTimestamp();
                (epoch, quietFor, takenOverAt) = await RunAsync(TryAcquireAsync, "acquire", _operationTimeout, CancellationToken.None);
            }
        }

        if (epoch is null)
        {
            Holding? lost;
            lock (_gate)
            {
                lost = _holding;
            }

            if (lost is not null)
            {
                Lose(lost, new LeaseException($"Lease {Settings.LeaseName} is held by another owner."));
            }

            return false;
        }

        var deadline = sent + Ticks(_ttl - _margin);
        lock (_gate)
        {
            if (_holding is { } current && current.Epoch == epoch && current.Extend(deadline, _time))
            {
                current.Callback = leaseLostCallback;
                return true;
            }
        }

        if (_listener is not null)
        {
            // Before the holder hears of it: what the listener sets up for the new tenure must be there when it acts.
            try
            {
                await RunAsync(
                    async token =>
                    {
                        await _listener.AcquiredAsync(Tenure(epoch.Value), quietFor, takenOverAt, token);
                        return true;
                    },
                    "report the acquisition",
                    _operationTimeout,
                    CancellationToken.None);
            }
            catch (Exception e)
            {
                // The row is this owner's now; unreported, it must not be used. It expires unless acquired again.
                await ReleaseQuietlyAsync();
                throw new LeaseException($"Lease {Settings.LeaseName}: the acquisition could not be reported: {e.Message}", e);
            }
        }

        Holding? replaced = null;
        lock (_gate)
        {
            if (_holding is { } current && current.Epoch == epoch && current.Extend(deadline, _time))
            {
                current.Callback = leaseLostCallback;
                return true;
            }

            replaced = _holding;
            var holding = new Holding(epoch.Value, deadline, leaseLostCallback);
            holding.Watchdog = _time.CreateTimer(
                _ => Lose(holding, new LeaseTimeoutException($"Lease {Settings.LeaseName} was not renewed in time: given up before it can expire.")),
                null, Remaining(deadline), Timeout.InfiniteTimeSpan);
            _holding = holding;
            _ = Task.Run(() => RenewAsync(holding));
        }

        if (replaced is not null)
        {
            // A new epoch while this owner thought it held the lease: that tenure ended in between.
            Lose(replaced, new LeaseException($"Lease {Settings.LeaseName} changed hands since it was acquired at epoch {replaced.Epoch}."));
        }

        Log.Acquired(_logger, Settings.LeaseName, Settings.OwnerName, epoch.Value);
        return true;
    }

    /// <summary>
    /// Stops renewing and frees the row if this owner holds it; true once the lease is not this owner's in the
    /// database. Idempotent. Fails with <see cref="LeaseException"/> when the database could not be reached: the lease
    /// is given up locally all the same, and its row expires after the TTL.
    /// <para>
    /// With <c>release-in-background = on</c> (the shard leases, <see cref="ShardConfigPath"/>) it returns true at once
    /// and does all that on the thread pool, tracked by <see cref="PendingLeaseReleases"/>. Akka.Cluster.Sharding
    /// 1.5.75 waits for this task synchronously, on the thread of the stopping shard (<c>Shard.PostStop</c>): a member
    /// handing off 57 shards blocked as many pool threads on database round trips whose completions needed the pool
    /// too, and the whole actor system stalled (11.6 s without a heartbeat in one run), long enough for the others to down the leaving member and
    /// wait out its leases. Nothing depends on the row being free when the shard has stopped: its successor asks for the
    /// lease until it is.
    /// </para>
    /// </summary>
    public override Task<bool> Release()
    {
        // Ended here, whichever way the row is freed: from now on this node does not count on the lease.
        Holding? holding;
        bool ended;
        lock (_gate)
        {
            holding = _holding;
            _holding = null;
            ended = holding?.End() ?? false;
        }

        if (!_releaseInBackground)
        {
            return FreeAsync(holding, ended);
        }

        var release = Task.Run(async () =>
        {
            try
            {
                await FreeAsync(holding, ended);
            }
            catch (Exception e)
            {
                Log.BackgroundReleaseFailed(_logger, Settings.LeaseName, e);
            }
        });
        _pendingReleases?.Track(release);
        return Task.FromResult(true);
    }

    /// <summary>Tells the listener (when this call <paramref name="ended"/> the holding), then frees the row if it is still this owner's.</summary>
    private async Task<bool> FreeAsync(Holding? holding, bool ended)
    {
        if (ended && _listener is not null)
        {
            try
            {
                await RunAsync(
                    async token =>
                    {
                        await _listener.ReleasingAsync(Tenure(holding!.Epoch), token);
                        return true;
                    },
                    "report the release",
                    _operationTimeout,
                    CancellationToken.None);
            }
            catch (Exception e)
            {
                // What the listener would have saved is lost; the lease is released all the same.
                Log.ListenerFailed(_logger, Settings.LeaseName, e);
            }
        }

        try
        {
            await RunAsync(ReleaseRowAsync, "release", _operationTimeout, CancellationToken.None);
        }
        finally
        {
            if (ended)
            {
                _listener?.Ended(Tenure(holding!.Epoch));
            }
        }

        Log.Released(_logger, Settings.LeaseName, Settings.OwnerName);
        return true;
    }

    private async Task ReleaseQuietlyAsync()
    {
        try
        {
            await RunAsync(ReleaseRowAsync, "release", _operationTimeout, CancellationToken.None);
        }
        catch (LeaseException)
        {
            // The row expires by itself.
        }
    }

    private LeaseTenure Tenure(long epoch) => new(Settings.LeaseName, Settings.OwnerName, epoch);

    /// <summary>True only while this owner holds the lease and its own deadline (last renewal + TTL − safety-margin) is ahead.</summary>
    public override bool CheckLease()
    {
        var holding = Volatile.Read(ref _holding);
        return holding is not null && Holds(holding);
    }

    private bool Holds(Holding holding) => !holding.Ended && _time.GetTimestamp() < holding.Deadline;

    /// <summary>Renews every heartbeat-interval until released or lost; failed renewals are retried sooner, and the watchdog decides when they are too late.</summary>
    private async Task RenewAsync(Holding holding)
    {
        var stop = holding.Stopping;
        var wait = _interval;
        var failures = 0;
        while (true)
        {
            try
            {
                await Task.Delay(wait, _time, stop);
                var sent = _time.GetTimestamp();

                // A renewal still unanswered after one interval is overtaken by the next try.
                var timeout = _operationTimeout < _interval ? _operationTimeout : _interval;
                if (!await RunAsync(token => TryRenewAsync(holding.Epoch, token), "renew", timeout, stop))
                {
                    Lose(holding, new LeaseException($"Lease {Settings.LeaseName} is no longer held by {Settings.OwnerName}: it expired or another owner took it."));
                    return;
                }

                lock (_gate)
                {
                    if (!holding.Extend(sent + Ticks(_ttl - _margin), _time))
                    {
                        return;
                    }
                }

                failures = 0;
                wait = _interval;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Jittered backoff from 100 ms up to the interval: several more tries before the watchdog's deadline.
                wait = TimeSpan.FromMilliseconds(Math.Min(_interval.TotalMilliseconds, 100 * Math.Pow(2, failures++)) * (0.5 + Random.Shared.NextDouble() / 2));
                Log.RenewalFailed(_logger, Settings.LeaseName, wait, e);
            }
        }
    }

    /// <summary>Ends a holding for good: stops its renewals, and calls its lost callback once.</summary>
    private void Lose(Holding holding, Exception reason)
    {
        lock (_gate)
        {
            if (!holding.End())
            {
                return;
            }
        }

        Log.Lost(_logger, Settings.LeaseName, Settings.OwnerName, holding.Epoch, reason.Message);
        try
        {
            // First: the listener stops what the tenure runs at once, where the holder's callback only sends word of it.
            _listener?.Ended(Tenure(holding.Epoch));
        }
        catch (Exception e)
        {
            Log.ListenerFailed(_logger, Settings.LeaseName, e);
        }

        try
        {
            holding.Callback?.Invoke(reason);
        }
        catch (Exception e)
        {
            Log.LostCallbackFailed(_logger, Settings.LeaseName, e);
        }
    }

    /// <summary>Runs one statement within <paramref name="timeout"/> (<see cref="BoundedStatement"/>), its failures as the lease's exceptions.</summary>
    private async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> statement, string operation, TimeSpan timeout, CancellationToken stop)
    {
        try
        {
            return await BoundedStatement.RunAsync(statement, timeout, _time, stop);
        }
        catch (TimeoutException e)
        {
            throw new LeaseTimeoutException($"Lease {Settings.LeaseName}: {operation} did not finish within {timeout}.", e);
        }
        catch (OperationCanceledException e) when (!stop.IsCancellationRequested)
        {
            throw new LeaseTimeoutException($"Lease {Settings.LeaseName}: {operation} was cancelled before it finished.", e);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or System.Net.Sockets.SocketException)
        {
            throw new LeaseException($"Lease {Settings.LeaseName}: {operation} failed: {e.Message}", e);
        }
    }

    /// <summary>
    /// The new or kept epoch when this owner now holds the lease, null when another owner does; when it was taken from
    /// an owner whose lease had expired, how long ago that was; and the epoch at which that last happened.
    /// </summary>
    private async Task<(long? Epoch, TimeSpan? QuietFor, long TakenOverAt)> TryAcquireAsync(CancellationToken cancellationToken)
    {
        // Row lock on conflict: of two owners acquiring at once, the second sees the first's row and is refused.
        await using var command = _data.CreateCommand("""
            INSERT INTO leases (name, owner, epoch, acquired_at, expires_at)
            VALUES (@name, @owner, 1, clock_timestamp(), clock_timestamp() + @ttl)
            ON CONFLICT (name) DO UPDATE SET
                epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
                acquired_at = CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at ELSE excluded.acquired_at END,
                quiet_since = CASE WHEN leases.owner = excluded.owner THEN leases.quiet_since
                                   WHEN leases.owner IS NULL THEN NULL
                                   ELSE leases.expires_at END,
                taken_over_epoch = CASE WHEN leases.owner = excluded.owner OR leases.owner IS NULL THEN leases.taken_over_epoch
                                        ELSE leases.epoch + 1 END,
                owner = excluded.owner,
                expires_at = excluded.expires_at
            WHERE leases.owner IS NULL OR leases.owner = excluded.owner OR leases.expires_at <= clock_timestamp()
            RETURNING epoch, extract(epoch FROM clock_timestamp() - quiet_since)::float8, taken_over_epoch;
            """);
        command.Parameters.AddWithValue("name", Settings.LeaseName);
        command.Parameters.AddWithValue("owner", Settings.OwnerName);
        command.Parameters.AddWithValue("ttl", _ttl);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return (null, null, 0);
        }

        return (reader.GetInt64(0), reader.IsDBNull(1) ? null : TimeSpan.FromSeconds(Math.Max(0, reader.GetDouble(1))), reader.GetInt64(2));
    }

    /// <summary>
    /// Whether the lease's holder is a member leaving the cluster (its row in cluster_seeds marked so, the first step of
    /// its drain): it releases the lease as soon as its shard has stopped, and a successor asking at the same moment is
    /// refused. Akka asks again after lease-retry-interval, which its 250 ms scheduler ticks stretch to 250–500 ms; in a
    /// leave under load that was most of a moved group's pause (554–584 ms from asking to the group's new actor). False
    /// when it cannot tell: Akka's retry is then the way, as for a holder that crashed and whose row must expire.
    /// </summary>
    private async Task<bool> HolderIsLeavingAsync()
    {
        try
        {
            return await RunAsync(
                async token =>
                {
                    await using var command = _data.CreateCommand("""
                        SELECT EXISTS (
                            SELECT 1 FROM leases l JOIN cluster_seeds s ON right(s.address, length(l.owner) + 3) = '://' || l.owner
                            WHERE l.name = @name AND s.leaving AND l.expires_at > clock_timestamp());
                        """);
                    command.Parameters.AddWithValue("name", Settings.LeaseName);
                    return await command.ExecuteScalarAsync(token) is true;
                },
                "look for the holder's leave",
                _operationTimeout,
                CancellationToken.None);
        }
        catch (LeaseException)
        {
            return false;
        }
    }

    // How often, and how many times, a refused acquisition asks again while the holder is leaving: its release follows
    // its shard's stop by a round trip or two, and each poll is one indexed row.
    private static readonly TimeSpan ReleasePoll = TimeSpan.FromMilliseconds(50);
    private const int ReleasePolls = 8;

    /// <summary>
    /// False when the row is no longer this owner's at this epoch, or is within safety-margin of its expiry: the lease
    /// is lost. The holder's own deadline falls at least safety-margin before the row's expiry, so a renewal that
    /// reaches the database later than that (held up in the network, sent before a partition) comes too late to be any
    /// use to it: refused, it does not keep the row from a successor for another TTL.
    /// </summary>
    private async Task<bool> TryRenewAsync(long epoch, CancellationToken cancellationToken)
    {
        await using var command = _data.CreateCommand("""
            UPDATE leases SET expires_at = clock_timestamp() + @ttl
            WHERE name = @name AND owner = @owner AND epoch = @epoch AND expires_at - @margin > clock_timestamp();
            """);
        command.Parameters.AddWithValue("name", Settings.LeaseName);
        command.Parameters.AddWithValue("owner", Settings.OwnerName);
        command.Parameters.AddWithValue("epoch", epoch);
        command.Parameters.AddWithValue("ttl", _ttl);
        command.Parameters.AddWithValue("margin", _margin);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private async Task<bool> ReleaseRowAsync(CancellationToken cancellationToken)
    {
        await using var command = _data.CreateCommand(
            "UPDATE leases SET owner = NULL, expires_at = clock_timestamp() WHERE name = @name AND owner = @owner;");
        command.Parameters.AddWithValue("name", Settings.LeaseName);
        command.Parameters.AddWithValue("owner", Settings.OwnerName);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private TimeSpan Remaining(long deadline) => _time.GetElapsedTime(_time.GetTimestamp(), deadline) is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero;

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>The actor system's services: Akka.Hosting hands it the node's service provider.</summary>
    private static IServiceProvider ServicesOf(ExtendedActorSystem system) => new ResolverServices(DependencyResolver.For(system).Resolver);

    private sealed class ResolverServices(IDependencyResolver resolver) : IServiceProvider
    {
        public object? GetService(Type serviceType) => resolver.GetService(serviceType);
    }

    /// <summary>
    /// One tenure of the lease, from an acquisition until it is released or lost. A later acquisition is a new
    /// holding, so a lost callback belongs to the tenure it was given for and runs at most once.
    /// </summary>
    private sealed class Holding(long epoch, long deadline, Action<Exception>? callback)
    {
        private readonly CancellationTokenSource _stop = new();
        private long _deadline = deadline;
        private int _ended;

        public long Epoch { get; } = epoch;

        public Action<Exception>? Callback { get; set; } = callback;

        public ITimer? Watchdog { get; set; }

        /// <summary>Monotonic timestamp after which this owner no longer counts on the lease.</summary>
        public long Deadline => Volatile.Read(ref _deadline);

        public bool Ended => Volatile.Read(ref _ended) == 1;

        public CancellationToken Stopping => _stop.Token;

        /// <summary>Moves the deadline (and the watchdog) on after a renewal; false when the holding already ended. Under the lease's lock.</summary>
        public bool Extend(long deadline, TimeProvider time)
        {
            if (Ended)
            {
                return false;
            }

            Volatile.Write(ref _deadline, deadline);
            var left = time.GetElapsedTime(time.GetTimestamp(), deadline);
            Watchdog?.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            return true;
        }

        /// <summary>True for the one call that ends this holding: its renewals stop and its watchdog is disarmed.</summary>
        public bool End()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 1)
            {
                return false;
            }

            // Its callbacks run on the thread pool, not here under the lease's lock: cancelling a renewal that Npgsql
            // has in flight opens a connection to send PostgreSQL a cancel request, and waits for the server.
            _ = _stop.CancelAsync();
            Watchdog?.Dispose();
            return true;
        }
    }
}
