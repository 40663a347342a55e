using Amazon.Runtime;
using Amazon.SQS;
using ClusterQueue.Contracts;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Node.Storage;
using ClusterQueue.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// The queue contract against the SQS queue: a real SQS-compatible server (fauxqs), a real SQLite file for the
/// records, and queue names of this test's own. The server keeps its own clock, so time passes for real here.
/// </summary>
public sealed class SqsMessageQueueTests(SqsEmulator emulator) : SqsContractTests, IClassFixture<SqsEmulator>, IAsyncLifetime
{
    private readonly SqsQueueRig _rig = new(emulator);

    protected override Task<IMessageQueue> CreateQueueAsync(FakeTimeProvider time) => Task.FromResult<IMessageQueue>(_rig.Start(time));

    protected override Task DefineGroupAsync(string groupId) => _rig.DefineGroupAsync(groupId);

    protected override long AttemptHistoryRows() => CountAttemptRows(_rig.Database);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _rig.DisposeAsync().AsTask();
}

/// <summary>What every SQS-backed run of the contract shares: SQS keeps its own clock, so time passes for real.</summary>
public abstract class SqsContractTests : MessageQueueContractTests
{
    protected override async Task LetTimePassAsync(FakeTimeProvider time, TimeSpan span)
    {
        time.Advance(span);

        // SQS times visibility in whole seconds on its own clock; the margin keeps a slow machine from looking early.
        await Task.Delay(span + TimeSpan.FromMilliseconds(600));
    }
}

/// <summary>The same contract with the records in PostgreSQL, as a cluster keeps them: the SQS queue's SQL on the other store.</summary>
public sealed class SqsOnPostgresMessageQueueTests(SqsEmulator emulator, PostgresServer server)
    : SqsContractTests, IClassFixture<SqsEmulator>, IClassFixture<PostgresServer>, IAsyncLifetime
{
    private SqsQueueRig? _rig;

    protected override Task<IMessageQueue> CreateQueueAsync(FakeTimeProvider time) => Task.FromResult<IMessageQueue>(_rig!.Start(time));

    protected override Task DefineGroupAsync(string groupId) => _rig!.DefineGroupAsync(groupId);

    protected override long AttemptHistoryRows() => CountAttemptRows(_rig!.Database);

    public async Task InitializeAsync()
    {
        var records = await PostgresMessageQueueTests.OpenAsync(server);
        _rig = new SqsQueueRig(emulator, () => records);
    }

    public Task DisposeAsync() => _rig!.DisposeAsync().AsTask();
}

/// <summary>
/// An SQS queue on the emulator with its records in a fresh SQLite file (or the database <paramref name="openRecords"/>
/// gives), under a queue prefix no other test uses.
/// </summary>
public sealed class SqsQueueRig(SqsEmulator emulator, Func<SqlDatabase>? openRecords = null) : IAsyncDisposable
{
    private readonly TempDirectory _directory = new();
    private SqlDatabase? _database;
    private AmazonSQSClient? _client;
    private FakeTimeProvider? _time;

    public SqsOptions Options { get; } = new()
    {
        ServiceUrl = emulator.Endpoint.ToString(),
        QueuePrefix = $"t{Guid.NewGuid():N}"[..12] + "-",
        ReceiveWait = TimeSpan.Zero,
    };

    public AmazonSQSClient Client => _client ?? throw new InvalidOperationException("Start the rig first.");

    public SqlDatabase Database => _database ?? throw new InvalidOperationException("Start the rig first.");

    public IPayloadStore Payloads { get; private set; } = null!;

    public SqsMessageQueue Queue { get; private set; } = null!;

    public SqsMessageQueue Start(FakeTimeProvider time, SqsOptions? options = null)
    {
        if (_database is not null)
        {
            throw new InvalidOperationException("Each test creates one queue.");
        }

        _time = time;
        var storage = new StorageOptions { Sqlite = new SqliteOptions { Path = _directory.File("records.db") } };
        _database = openRecords?.Invoke() ?? new SqliteDatabase(Microsoft.Extensions.Options.Options.Create(storage), NullLogger<SqliteDatabase>.Instance);
        _client = SqsSetup.CreateClient(options ?? Options, new BasicAWSCredentials("test", "test"));
        Payloads = new SqlPayloadStore(_database);
        Queue = Reopen(options);
        return Queue;
    }

    /// <summary>A second queue over the same records and server (or another client), as a restarted node would have.</summary>
    public SqsMessageQueue Reopen(SqsOptions? options = null, IAmazonSQS? client = null) => new(
        client ?? Client,
        new SqsSendBatcher(client ?? Client, (options ?? Options).MaxMessageBytes),
        new MessageRecords(Database, _time!),
        Payloads,
        options ?? Options,
        _time!,
        NullLogger<SqsMessageQueue>.Instance);

    public async Task DefineGroupAsync(string groupId, double handlerTimeoutSeconds = 30)
    {
        var definition = new GroupDefinition
        {
            RatePerSecond = 100,
            Burst = 100,
            MaxConcurrency = 10,
            HandlerTimeoutSeconds = handlerTimeoutSeconds,
            Target = new TargetDefinition { Url = "http://127.0.0.1:9/unused" },
        };
        var now = _time!.GetUtcNow();
        var settings = GroupSettings.FromValidDefinition(groupId, definition, now, now);
        await Queue.PrepareGroupAsync(groupId, settings.HandlerTimeout, CancellationToken.None);
        await new GroupStore(Database, TimeProvider.System).UpsertAsync(settings, CancellationToken.None);
    }

    public string QueueName(string groupId) => SqsQueueNames.For(Options.QueuePrefix, groupId);

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        _directory.Dispose();
    }
}
