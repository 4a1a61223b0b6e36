using System.Text.Json;

namespace WsWeb.Tests.Hubs;

/// <summary>
/// Checks one flow's MessagesAdded/Gap stream as a client would rely on it: indexes consecutive, a gap's
/// cursor exactly the first index not delivered, and nothing delivered out of order after a gap.
/// </summary>
internal sealed class MessageSequence(long start = 0)
{
    private long? _gapCursor;

    /// <summary>The next index the stream owes us.</summary>
    public long Expected { get; private set; } = start;

    public long Delivered { get; private set; }

    public int Batches { get; private set; }

    /// <summary>Each gap: its cursor and the first index delivered after it (null if none came).</summary>
    public List<(long Cursor, long? Resumed)> Gaps { get; } = [];

    public void Observe(HubInvocation invocation)
    {
        switch (invocation.Target)
        {
            case "MessagesAdded":
                Added(invocation.Array(1));
                break;
            case "Gap":
                Assert.Equal("flow", invocation.String(0));
                Gap(invocation.Long(2));
                break;
        }
    }

    private void Added(JsonElement[] messages)
    {
        Assert.NotEmpty(messages);
        var first = messages[0].GetProperty("index").GetInt64();
        if (_gapCursor is { } cursor)
        {
            Assert.True(first > cursor, $"after a gap at {cursor} delivery resumed at {first}");
            Gaps[^1] = (cursor, first);
            Expected = first;
            _gapCursor = null;
        }

        foreach (var message in messages)
        {
            Assert.Equal(Expected, message.GetProperty("index").GetInt64());
            Expected++;
        }

        Delivered += messages.Length;
        Batches++;
    }

    private void Gap(long cursor)
    {
        Assert.Null(_gapCursor);
        Assert.Equal(Expected, cursor);
        _gapCursor = cursor;
        Gaps.Add((cursor, null));
    }
}
