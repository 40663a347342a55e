using System.Text.RegularExpressions;
using ClusterQueue.Node.Queueing.Sqs;

namespace ClusterQueue.Tests.Queueing.Sqs;

public sealed partial class SqsQueueNamesTests
{
    [GeneratedRegex("^[A-Za-z0-9_-]{1,80}$")]
    private static partial Regex SqsName();

    [Theory]
    [InlineData("orders")]
    [InlineData("shop_42-eu")]
    public void For_IdThatFits_IsPrefixPlusId(string id) =>
        Assert.Equal("cq-" + id, SqsQueueNames.For("cq-", id));

    [Theory]
    [InlineData("github.push")]
    [InlineData("a.b.c")]
    [InlineData(".")]
    public void For_IdWithDots_IsAValidNameWithAReadableStartAndAHash(string id)
    {
        var name = SqsQueueNames.For("cq-", id);

        Assert.Matches(SqsName(), name);
        Assert.StartsWith("cq-" + id.Replace('.', '_') + "-", name, StringComparison.Ordinal);
        Assert.Matches("-[0-9a-f]{16}$", name);
    }

    [Fact]
    public void For_IdsThatDifferOnlyByDotOrUnderscore_GetDifferentNames()
    {
        var dotted = SqsQueueNames.For("cq-", "a.b");
        var underscored = SqsQueueNames.For("cq-", "a_b");

        Assert.NotEqual(dotted, underscored);
        Assert.Equal("cq-a_b", underscored);
    }

    [Theory]
    [InlineData("", 128)]
    [InlineData("cq-", 78)]
    [InlineData("cq-", 128)]
    [InlineData("a-forty-character-prefix-for-this-test-", 100)]
    public void For_LongIds_FitInEightyCharacters(string prefix, int length)
    {
        var id = new string('g', length);

        var name = SqsQueueNames.For(prefix, id);

        Assert.Matches(SqsName(), name);
        Assert.StartsWith(prefix + "ggg", name, StringComparison.Ordinal);
    }

    [Fact]
    public void For_IdAtTheLimit_IsKeptWhole()
    {
        var id = new string('g', 77);

        Assert.Equal("cq-" + id, SqsQueueNames.For("cq-", id));
    }

    [Fact]
    public void For_LongIdsSharingTheirStart_GetDifferentNames()
    {
        var start = new string('g', 120);

        Assert.NotEqual(SqsQueueNames.For("cq-", start + "a"), SqsQueueNames.For("cq-", start + "b"));
    }

    [Fact]
    public void For_SameId_IsStable() =>
        Assert.Equal(SqsQueueNames.For("cq-", "x.y"), SqsQueueNames.For("cq-", "x.y"));
}
