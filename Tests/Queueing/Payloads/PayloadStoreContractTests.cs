using ClusterQueue.Node.Queueing.Payloads;

namespace ClusterQueue.Tests.Queueing.Payloads;

/// <summary>
/// The behaviour every <see cref="IPayloadStore"/> must have (this node's database, S3). A backend's test class
/// inherits this and supplies a new, empty store; the tests use nothing but the interface.
/// </summary>
public abstract class PayloadStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>More than one S3 DeleteObjects call (1000 keys) and one ListObjectsV2 page can hold.</summary>
    private const int LargeGroup = 1_050;

    /// <summary>A new, empty store on storage of its own. Called once per test, first.</summary>
    protected abstract Task<IPayloadStore> CreateStoreAsync();

    [Fact]
    public async Task Get_AfterPut_ReturnsTheSameBytes()
    {
        var store = await CreateStoreAsync();
        var id = NewId();
        byte[] body = [0, 1, 2, 0xFF, 0x7F, (byte)'{', (byte)'}'];

        await store.PutAsync("orders", id, body, None);

        Assert.Equal(body, await store.GetAsync("orders", id, None));
    }

    [Fact]
    public async Task Get_AfterPutOf300KiBRandomBody_ReturnsTheSameBytes()
    {
        var store = await CreateStoreAsync();
        var id = NewId();
        var body = RandomBody(300 * 1024);

        await store.PutAsync("orders", id, body, None);

        Assert.Equal(body, await store.GetAsync("orders", id, None));
    }

    [Fact]
    public async Task Get_AfterPutOfEmptyBody_ReturnsEmptyNotNull()
    {
        var store = await CreateStoreAsync();
        var id = NewId();

        await store.PutAsync("orders", id, [], None);

        var stored = await store.GetAsync("orders", id, None);
        Assert.NotNull(stored);
        Assert.Empty(stored);
    }

    [Fact]
    public async Task Get_OfMissingPayload_ReturnsNull()
    {
        var store = await CreateStoreAsync();
        var id = NewId();
        await store.PutAsync("orders", id, [1, 2, 3], None);

        Assert.Null(await store.GetAsync("orders", NewId(), None));
        Assert.Null(await store.GetAsync("billing", id, None));
        Assert.Null(await store.GetAsync("never-used", NewId(), None));
    }

    [Fact]
    public async Task Put_OfTheSameMessageTwice_KeepsTheLatestBody()
    {
        var store = await CreateStoreAsync();
        var id = NewId();
        var latest = RandomBody(2048);

        await store.PutAsync("orders", id, RandomBody(4096), None);
        await store.PutAsync("orders", id, latest, None);

        Assert.Equal(latest, await store.GetAsync("orders", id, None));
    }

    [Fact]
    public async Task Delete_RemovesThePayload_AndRepeatingItOrDeletingAMissingOneSucceeds()
    {
        var store = await CreateStoreAsync();
        var id = NewId();
        var kept = NewId();
        await store.PutAsync("orders", id, [1, 2, 3], None);
        await store.PutAsync("orders", kept, [4, 5, 6], None);

        await store.DeleteAsync("orders", id, None);
        Assert.Null(await store.GetAsync("orders", id, None));

        await store.DeleteAsync("orders", id, None);
        await store.DeleteAsync("orders", NewId(), None);
        await store.DeleteAsync("never-used", NewId(), None);
        Assert.Null(await store.GetAsync("orders", id, None));
        Assert.Equal([4, 5, 6], await store.GetAsync("orders", kept, None));
    }

    [Fact]
    public async Task DeleteGroup_RemovesEveryPayloadOfTheGroup_AndNoneOfAnotherGroups()
    {
        var store = await CreateStoreAsync();
        var removed = await PutManyAsync(store, "orders", LargeGroup);

        // "orders-eu" starts with "orders": a prefix match without the group's boundary would take it too.
        var sibling = await PutManyAsync(store, "orders-eu", 3);
        var other = await PutManyAsync(store, "billing", 3);

        await store.DeleteGroupAsync("orders", None);

        await ForEachAsync(removed, async id => Assert.Null(await store.GetAsync("orders", id, None)));
        foreach (var (group, ids) in new[] { ("orders-eu", sibling), ("billing", other) })
        {
            foreach (var id in ids)
            {
                Assert.Equal(BodyFor(id), await store.GetAsync(group, id, None));
            }
        }
    }

    [Fact]
    public async Task DeleteGroup_OfAGroupWithoutPayloads_Succeeds_AndAPutAfterItIsKept()
    {
        var store = await CreateStoreAsync();
        await store.DeleteGroupAsync("orders", None);

        var id = NewId();
        await store.PutAsync("orders", id, [7], None);
        await store.DeleteGroupAsync("billing", None);

        Assert.Equal([7], await store.GetAsync("orders", id, None));
    }

    private static string NewId() => Guid.NewGuid().ToString();

    private static byte[] RandomBody(int length)
    {
        var body = new byte[length];
        Random.Shared.NextBytes(body);
        return body;
    }

    /// <summary>A body that tells which message it belongs to, so a mix-up between messages shows.</summary>
    private static byte[] BodyFor(string id) => System.Text.Encoding.UTF8.GetBytes($"payload of {id}");

    private static async Task<List<string>> PutManyAsync(IPayloadStore store, string groupId, int count)
    {
        var ids = Enumerable.Range(0, count).Select(_ => NewId()).ToList();
        await ForEachAsync(ids, id => store.PutAsync(groupId, id, BodyFor(id), None));
        return ids;
    }

    private static Task ForEachAsync(IEnumerable<string> ids, Func<string, Task> action) =>
        Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (id, _) => await action(id));
}
