using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.WebSockets;

/// <summary>
/// Reuse of large captured arrays: only an evicted message that nobody read and the relay no longer
/// writes gives its array back, and reading it afterwards fails clearly instead of showing other bytes.
/// </summary>
public sealed class ContentPoolTests
{
    private const int Large = ContentPool.MinLength;

    [Fact]
    public void Rent_ReusesAReturnedArrayOfTheSameLength_Only()
    {
        var pool = new ContentPool();
        var array = pool.Rent(Large);
        Assert.Equal(Large, array.Length);
        Assert.True(pool.Return(array));
        Assert.Equal(Large, pool.PooledBytes);

        Assert.NotSame(array, pool.Rent(Large + 1));
        Assert.Same(array, pool.Rent(Large));
        Assert.Equal(0, pool.PooledBytes);
        Assert.NotSame(array, pool.Rent(Large));
    }

    [Fact]
    public void Return_RefusesSmallArrays_AndStopsAtItsBounds()
    {
        var pool = new ContentPool(slots: 2, maxBytes: 3L * Large);
        Assert.False(pool.Return(new byte[Large - 1]));
        Assert.Empty(pool.Rent(0));

        Assert.True(pool.Return(new byte[Large]));
        Assert.True(pool.Return(new byte[Large]));
        Assert.False(pool.Return(new byte[Large]));
        Assert.Equal(2L * Large, pool.PooledBytes);

        var bytesBound = new ContentPool(slots: 8, maxBytes: Large + 10);
        Assert.True(bytesBound.Return(new byte[Large]));
        Assert.False(bytesBound.Return(new byte[Large]));
        Assert.Equal(Large, bytesBound.PooledBytes);
    }

    [Fact]
    public void EvictedUnreadMessage_ReleasesItsArray_OnceTheRelayUnpinsIt()
    {
        var pool = new ContentPool();
        var content = Filled(1);
        var message = Pooled(content, pool);

        message.Evict();
        Assert.Equal(0, pool.PooledBytes);

        message.Unpin();
        Assert.Same(content, pool.Rent(Large));
        var error = Assert.Throws<InvalidOperationException>(() => message.Content);
        Assert.Contains("evicted", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => message.GetState());
        Assert.Contains("content released", message.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void UnpinnedBeforeEviction_ReleasesAtEviction()
    {
        var pool = new ContentPool();
        var message = Pooled(Filled(2), pool);
        message.Unpin();
        Assert.Equal(0, pool.PooledBytes);

        message.Evict();
        message.Evict();
        Assert.Equal(Large, pool.PooledBytes);
    }

    [Fact]
    public void MessageReadBeforeEviction_KeepsItsContentForGood()
    {
        var pool = new ContentPool();
        var content = Filled(3);
        var message = Pooled(content, pool);
        Assert.Same(content, message.Content);

        message.Unpin();
        message.Evict();
        Assert.Equal(0, pool.PooledBytes);
        Assert.Same(content, message.Content);
        Assert.All(message.Content, b => Assert.Equal(3, b));
    }

    [Theory]
    [InlineData("text")]
    [InlineData("type")]
    [InlineData("state")]
    public void AnyPublicReadOrEdit_SharesTheContent(string how)
    {
        var pool = new ContentPool();
        var content = Filled((byte)'a');
        var message = new WebSocketMessage(Opcode.Text, true, content, timestamp: 1);
        message.UsePool(pool);
        switch (how)
        {
            case "text": _ = message.Text; break;
            case "type": message.Type = Opcode.Binary; break;
            case "state": _ = message.GetState(); break;
        }

        message.Unpin();
        message.Evict();
        Assert.Equal(0, pool.PooledBytes);
        Assert.Equal(Large, message.Content.Length);
    }

    [Fact]
    public void MessagesHandedOutByTheList_AreShared_SoTrimmingNeverReleasesThem()
    {
        var pool = new ContentPool();
        var data = new WebSocketData(maxMessages: 1);
        var seenBySnapshot = Pooled(Filled(4), pool);
        data.Add(seenBySnapshot);
        seenBySnapshot.Unpin();
        _ = data.Snapshot();

        var seenByIndexer = Pooled(Filled(5), pool);
        data.Add(seenByIndexer);
        seenByIndexer.Unpin();
        _ = data.Messages[0];

        var seenByFind = Pooled(Filled(6), pool);
        data.Add(seenByFind);
        seenByFind.Unpin();
        _ = data.Find(seenByFind.Index);

        var unseen = Pooled(Filled(7), pool);
        data.Add(unseen);
        unseen.Unpin();
        data.Add(new WebSocketMessage(Opcode.Binary, true, [1], timestamp: 1));

        // Trimmed: the three that were handed out keep their bytes; only the unseen one went back.
        Assert.All(seenBySnapshot.Content, b => Assert.Equal(4, b));
        Assert.All(seenByIndexer.Content, b => Assert.Equal(5, b));
        Assert.All(seenByFind.Content, b => Assert.Equal(6, b));
        Assert.Equal(Large, pool.PooledBytes);
        Assert.Throws<InvalidOperationException>(() => unseen.Content);
    }

    [Fact]
    public async Task ConcurrentReadersAndEviction_NeverSeeAReusedArray()
    {
        // A reader either shares the content first (and keeps it) or finds it released; never both.
        for (var round = 0; round < 200; round++)
        {
            var pool = new ContentPool();
            var message = Pooled(Filled(9), pool);
            message.Unpin();
            using var start = new Barrier(2);
            var reader = Task.Run(() =>
            {
                start.SignalAndWait();
                try
                {
                    return message.Content;
                }
                catch (InvalidOperationException)
                {
                    return null;
                }
            });
            start.SignalAndWait();
            message.Evict();
            var read = await reader;

            if (read is null)
            {
                Assert.Equal(Large, pool.PooledBytes);
            }
            else
            {
                Assert.Equal(0, pool.PooledBytes);
                Assert.All(read, b => Assert.Equal(9, b));
            }
        }
    }

    [Fact]
    public void ByteRetention_TrimsATenthOfTheBound_NotTheWholeList()
    {
        // 100-byte messages (each counted with its overhead) under a bound of ten of them: the eleventh message trims
        // the oldest two (back under nine tenths of the bound), not everything but the newest.
        const int each = 100 + WebSocketData.MessageOverhead;
        var data = new WebSocketData(maxMessages: 100_000, maxBytes: 10 * each);
        for (var i = 0; i < 11; i++)
        {
            data.Add(new WebSocketMessage(Opcode.Binary, true, new byte[100], timestamp: i));
        }

        Assert.Equal(9, data.Messages.Count);
        Assert.Equal(9 * each, data.RetainedBytes);
        Assert.Equal(2, data.TrimmedCount);
    }

    private static byte[] Filled(byte value)
    {
        var content = new byte[Large];
        content.AsSpan().Fill(value);
        return content;
    }

    private static WebSocketMessage Pooled(byte[] content, ContentPool pool)
    {
        var message = new WebSocketMessage(Opcode.Binary, true, content, timestamp: 1);
        message.UsePool(pool);
        return message;
    }
}
