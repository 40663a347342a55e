using ClusterQueue.Node.Admin;
using ClusterQueue.Node.Cluster;
using ClusterQueue.Node.Dashboard;
using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Ingress;
using ClusterQueue.Node.Observability;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Node.Storage;

// Configuration is read once at start (groups live in the store, not in files). Reloading on change would watch the
// content root and everything under it, and the default data directory is under it: every write to the database
// would wake the file watcher. The node's own arguments come after, so they can still turn it back on.
var builder = WebApplication.CreateBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);

// With nothing configured, one embedded node on loopback: safe to run on a laptop with no admin token.
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["http_ports"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:8080");
}

builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddProblemDetails();
builder.Services.AddOpenApi();
builder.Services
    .AddStorage(builder.Configuration)
    .AddGroups()
    .AddQueueing(builder.Configuration)
    .AddProcessing(builder.Configuration)
    .AddCluster(builder.Configuration)
    .AddIngress(builder.Configuration)
    .AddAdmin(builder.Configuration)
    .AddObservability(builder.Configuration)
    .AddDashboard(builder.Configuration);
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = builder.Configuration.GetValue(
    $"{ProcessingOptions.Section}:{nameof(ProcessingOptions.DrainTimeout)}", TimeSpan.FromSeconds(20)) + TimeSpan.FromSeconds(10));

var app = builder.Build();
app.UseExceptionHandler(new ExceptionHandlerOptions
{
    // A malformed request (a query value that does not bind, a body shorter than its Content-Length) is the client's error.
    StatusCodeSelector = exception => exception is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError,
});
app.UseStatusCodePages();
app.MapOpenApi();
app.MapIngress();
var admin = app.MapAdmin();
admin.MapGroups();
admin.MapQueueing();
app.MapObservability(admin);
app.MapDashboard(admin);
app.Run();

/// <summary>The entry point, visible to the integration tests' host factory.</summary>
public partial class Program;
