using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Storage;

/// <summary>Where groups, dedup keys, dead letters and (in the store queue mode) messages live. Bound from the ClusterQueue section.</summary>
public sealed class StorageOptions : IValidatableObject
{
    public const string Section = "ClusterQueue";

    /// <summary>sqlite (embedded, zero setup) is the default; postgres arrives with the cluster.</summary>
    [RegularExpression("^(sqlite)$", ErrorMessage = "ClusterQueue:Store must be 'sqlite' (postgres is not available in this build).")]
    public string Store { get; set; } = "sqlite";

    /// <summary>store keeps messages in the SQL store's own table, which needs nothing else running; sqs gives each group an SQS queue.</summary>
    [RegularExpression("^(store|sqs)$", ErrorMessage = "ClusterQueue:Queue must be 'store' or 'sqs'.")]
    public string Queue { get; set; } = "store";

    public SqliteOptions Sqlite { get; set; } = new();

    // Data annotations do not descend into nested options on their own; without this a bad Sqlite:* value would start.
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(Sqlite, new ValidationContext(Sqlite), results, validateAllProperties: true);
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
