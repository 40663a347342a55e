// The baseline for the ingest benchmark: the same Kestrel, the same route shape and the same body read as the
// node's ingress, answering 202 with a JSON id, but storing nothing. The node's rate divided by this one is the
// cost of durability, measured on the same machine in the same run.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
app.MapPost("/hooks/{id}", async (string id, HttpRequest request) =>
{
    using var body = new MemoryStream();
    await request.Body.CopyToAsync(body);
    return Results.Accepted($"/v1/messages/{id}", new { messageId = Guid.CreateVersion7().ToString(), duplicate = false });
});
app.Run();
