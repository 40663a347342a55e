namespace ClusterQueue.Node.Processing;

/// <summary>
/// Processes one message. The default forwards it over HTTP to the group's target; an in-process handler can be
/// registered instead. The token is cancelled at the group's handler timeout and at shutdown.
/// </summary>
public interface IMessageHandler
{
    Task<HandlerOutcome> HandleAsync(Delivery delivery, CancellationToken cancellationToken);
}
