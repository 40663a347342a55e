namespace ClusterQueue.Node.Storage;

public static class StorageSetup
{
    public static IServiceCollection AddStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>().Bind(configuration.GetSection(StorageOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<StoreHealth>();
        services.AddHostedService<StoreProbe>();
        if (string.Equals(configuration[$"{StorageOptions.Section}:{nameof(StorageOptions.Store)}"], "postgres", StringComparison.Ordinal))
        {
            services.AddSingleton<PostgresDatabase>();
            services.AddSingleton<SqlDatabase>(provider => provider.GetRequiredService<PostgresDatabase>());
        }
        else
        {
            services.AddSingleton<SqlDatabase, SqliteDatabase>();
        }

        return services;
    }
}
