using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Storage;

/// <summary>Where groups, dedup keys, dead letters and (in the store queue mode) messages live. Bound from the ClusterQueue section.</summary>
public sealed class StorageOptions : IValidatableObject
{
    public const string Section = "ClusterQueue";

    /// <summary>sqlite (embedded, zero setup) is the default; postgres is the cluster's store, shared by every node.</summary>
    [RegularExpression("^(sqlite|postgres)$", ErrorMessage = "ClusterQueue:Store must be 'sqlite' or 'postgres'.")]
    public string Store { get; set; } = "sqlite";

    /// <summary>store keeps messages in the SQL store's own table, which needs nothing else running; sqs gives each group an SQS queue.</summary>
    [RegularExpression("^(store|sqs)$", ErrorMessage = "ClusterQueue:Queue must be 'store' or 'sqs'.")]
    public string Queue { get; set; } = "store";

    public SqliteOptions Sqlite { get; set; } = new();

    public PostgresOptions Postgres { get; set; } = new();

    /// <summary>True when the store is PostgreSQL, which makes this node a member of a cluster.</summary>
    public bool IsCluster => string.Equals(Store, "postgres", StringComparison.Ordinal);

    // Data annotations do not descend into nested options on their own; without this a bad Sqlite:* value would start.
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(Sqlite, new ValidationContext(Sqlite), results, validateAllProperties: true);
        if (IsCluster)
        {
            Validator.TryValidateObject(Postgres, new ValidationContext(Postgres), results, validateAllProperties: true);
            if (string.IsNullOrWhiteSpace(Postgres.ConnectionString))
            {
                results.Add(new ValidationResult("ClusterQueue:Postgres:ConnectionString is required when ClusterQueue:Store is 'postgres'."));
            }
        }

        return results;
    }
}

public sealed class SqliteOptions
{
    /// <summary>Relative to the working directory, so `dotnet run` keeps its data beside the checkout.</summary>
    [Required(ErrorMessage = "ClusterQueue:Sqlite:Path is required.")]
    public string Path { get; set; } = "data/clusterqueue.db";

    /// <summary>
    /// Full fsyncs the WAL on every commit, so an acknowledged message survives power loss, not only a process crash;
    /// group commit spreads that fsync over every request in the batch. Normal survives kill -9 but not power loss.
    /// </summary>
    [RegularExpression("^(Full|Normal)$", ErrorMessage = "ClusterQueue:Sqlite:Synchronous must be Full or Normal.")]
    public string Synchronous { get; set; } = "Full";

    /// <summary>Upper bound on operations committed together; large enough to absorb a burst, small enough to keep one commit short.</summary>
    [Range(1, 10_000, ErrorMessage = "ClusterQueue:Sqlite:MaxBatch must be between 1 and 10000.")]
    public int MaxBatch { get; set; } = 512;
}

public sealed class PostgresOptions
{
    /// <summary>An Npgsql connection string; every node of a cluster names the same database.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// Writer connections, each committing its own batches: more than one keeps a slow commit from holding every
    /// request; a handful is enough, since each batch already carries many operations.
    /// </summary>
    [Range(1, 64, ErrorMessage = "ClusterQueue:Postgres:Writers must be between 1 and 64.")]
    public int Writers { get; set; } = 4;

    /// <summary>Upper bound on operations committed together, as for SQLite.</summary>
    [Range(1, 10_000, ErrorMessage = "ClusterQueue:Postgres:MaxBatch must be between 1 and 10000.")]
    public int MaxBatch { get; set; } = 256;
}
