using System.Text;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.WebSockets;

public sealed class WebSocketMessageTests
{
    [Fact]
    public void Constructor_Defaults()
    {
        var content = "hi"u8.ToArray();
        var message = new WebSocketMessage(Opcode.Text, fromClient: true, content, timestamp: 12.5);

        Assert.Equal(Opcode.Text, message.Type);
        Assert.True(message.FromClient);
        Assert.Same(content, message.Content);
        Assert.Equal(12.5, message.Timestamp);
        Assert.False(message.Dropped);
        Assert.False(message.Injected);
        Assert.Equal(-1, message.Index);
        Assert.Null(message.OriginalContent);
        Assert.Null(message.OriginalType);
        Assert.False(message.IsModified);
    }

    [Fact]
    public void Constructor_TakesEveryArgument()
    {
        var message = new WebSocketMessage(Opcode.Binary, fromClient: false, [1, 2], timestamp: 3, dropped: true, injected: true);
        Assert.Equal(Opcode.Binary, message.Type);
        Assert.False(message.FromClient);
        Assert.Equal(new byte[] { 1, 2 }, message.Content);
        Assert.Equal(3, message.Timestamp);
        Assert.True(message.Dropped);
        Assert.True(message.Injected);
    }

    [Fact]
    public void Constructor_NullContent_Throws() =>
        Assert.Throws<ArgumentNullException>(() => new WebSocketMessage(Opcode.Text, true, null!, 0));

    [Theory]
    [InlineData(Opcode.Continuation)]
    [InlineData(Opcode.Close)]
    [InlineData(Opcode.Ping)]
    [InlineData(Opcode.Pong)]
    [InlineData((Opcode)3)]
    public void OnlyTextAndBinary_AreMessageTypes(Opcode type)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WebSocketMessage(type, true, [], 0));

        var message = new WebSocketMessage(Opcode.Text, true, [], 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => message.Type = type);
        Assert.Equal(Opcode.Text, message.Type);
        Assert.Throws<ArgumentOutOfRangeException>(() => message.SetState(new WebSocketMessageState((int)type, true, [], 0, false, false)));
        Assert.Throws<ArgumentOutOfRangeException>(() => WebSocketMessage.FromState(new WebSocketMessageState((int)type, true, [], 0, false, false)));
    }

    [Fact]
    public void IsText()
    {
        Assert.True(new WebSocketMessage(Opcode.Text, true, [], 0).IsText);
        Assert.False(new WebSocketMessage(Opcode.Binary, true, [], 0).IsText);
    }

    [Fact]
    public void Text_Get_DecodesUtf8()
    {
        var message = new WebSocketMessage(Opcode.Text, true, Encoding.UTF8.GetBytes("grüße 𝄞"), 0);
        Assert.Equal("grüße 𝄞", message.Text);
    }

    [Fact]
    public void Text_Get_OfBytesThatAreNotUtf8_Throws_AsMitmproxysDecodeDoes()
    {
        // A replacement character read here and written back (the redact sample) would silently change the message.
        var message = new WebSocketMessage(Opcode.Text, true, [0x66, 0xFF], 0);
        Assert.Throws<DecoderFallbackException>(() => message.Text);
        Assert.Equal(new byte[] { 0x66, 0xFF }, message.Content);
        Assert.False(message.IsModified);
    }

    [Fact]
    public void Text_Set_EncodesUtf8_AndCountsAsAModification()
    {
        var original = "secret"u8.ToArray();
        var message = new WebSocketMessage(Opcode.Text, true, original, 0);
        message.Text = "REDACTED €";
        Assert.Equal(Encoding.UTF8.GetBytes("REDACTED €"), message.Content);
        Assert.Same(original, message.OriginalContent);
        Assert.Equal(Opcode.Text, message.OriginalType);
        Assert.True(message.IsModified);
    }

    [Fact]
    public void Text_Set_SameText_IsNotAModification()
    {
        var message = new WebSocketMessage(Opcode.Text, true, "same"u8.ToArray(), 0);
        message.Text = "same";
        Assert.False(message.IsModified);
    }

    [Fact]
    public void Text_Set_Null_Throws()
    {
        var message = new WebSocketMessage(Opcode.Text, true, [], 0);
        Assert.Throws<ArgumentNullException>(() => message.Text = null!);
    }

    [Fact]
    public void Text_Set_LoneSurrogate_IsRejectedRatherThanReplaced()
    {
        var message = new WebSocketMessage(Opcode.Text, true, "x"u8.ToArray(), 0);
        Assert.ThrowsAny<ArgumentException>(() => message.Text = "\uD800");
        Assert.Equal("x"u8.ToArray(), message.Content);
        Assert.False(message.IsModified);
    }

    [Fact]
    public void Text_OnBinary_Throws_ForGetAndSet()
    {
        var message = new WebSocketMessage(Opcode.Binary, true, [0xFF], 0);
        Assert.Throws<InvalidOperationException>(() => message.Text);
        Assert.Throws<InvalidOperationException>(() => message.Text = "x");
        Assert.Equal(new byte[] { 0xFF }, message.Content);
        Assert.False(message.IsModified);
    }

    [Fact]
    public void Drop_SetsDropped()
    {
        var message = new WebSocketMessage(Opcode.Text, true, [], 0);
        message.Drop();
        Assert.True(message.Dropped);
        message.Drop();
        Assert.True(message.Dropped);
    }

    [Fact]
    public void Kill_IsAnObsoleteAliasOfDrop()
    {
        var message = new WebSocketMessage(Opcode.Text, true, [], 0);
#pragma warning disable CS0618 // Kill is obsolete on purpose; this checks it still drops.
        message.Kill();
#pragma warning restore CS0618
        Assert.True(message.Dropped);
        Assert.Single(typeof(WebSocketMessage).GetMethod("Kill")!.GetCustomAttributes(typeof(ObsoleteAttribute), inherit: false));
    }

    [Fact]
    public void GetState_IsMitmproxysTuple()
    {
        var content = new byte[] { 1, 2, 3 };
        var message = new WebSocketMessage(Opcode.Binary, false, content, 1700000000.25, dropped: true, injected: false);
        var state = message.GetState();
        Assert.Equal(2, state.Type);
        Assert.False(state.FromClient);
        Assert.Same(content, state.Content);
        Assert.Equal(1700000000.25, state.Timestamp);
        Assert.True(state.Dropped);
        Assert.False(state.Injected);
    }

    [Fact]
    public void FromState_RoundTrips()
    {
        var state = new WebSocketMessageState(1, true, "hello"u8.ToArray(), 1234.5, false, true);
        var message = WebSocketMessage.FromState(state);
        Assert.Equal(Opcode.Text, message.Type);
        Assert.Equal("hello", message.Text);
        Assert.True(message.Injected);
        Assert.Equal(state, message.GetState());
    }

    [Fact]
    public void FromState_NullContent_Throws() =>
        Assert.Throws<ArgumentException>(() => WebSocketMessage.FromState(new WebSocketMessageState(1, true, null!, 0, false, false)));

    [Fact]
    public void SetState_ReplacesEverything_AndForgetsTheOriginal()
    {
        var message = new WebSocketMessage(Opcode.Text, true, "a"u8.ToArray(), 1);
        message.Content = "b"u8.ToArray();
        Assert.True(message.IsModified);

        var state = new WebSocketMessageState(2, false, [9], 99, true, true);
        message.SetState(state);
        Assert.Equal(state, message.GetState());
        Assert.Null(message.OriginalContent);
        Assert.Null(message.OriginalType);
        Assert.False(message.IsModified);
    }

    [Fact]
    public void SetState_NullContent_Throws_AndChangesNothing()
    {
        var message = new WebSocketMessage(Opcode.Text, true, "a"u8.ToArray(), 1);
        Assert.Throws<ArgumentNullException>(() => message.SetState(new WebSocketMessageState(2, false, null!, 5, true, true)));
        Assert.Equal(Opcode.Text, message.Type);
        Assert.Equal(1, message.Timestamp);
        Assert.False(message.Dropped);
    }

    [Fact]
    public void Timestamp_Given_IsUsed_EvenWithATimeProvider()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UnixEpoch.AddSeconds(100));
        Assert.Equal(5, new WebSocketMessage(Opcode.Text, true, [], 5, timeProvider: clock).Timestamp);
    }

    [Fact]
    public void Timestamp_Defaults_ToTheTimeProvider()
    {
        var now = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)).AddTicks(1_234_567);
        var clock = new ManualTimeProvider(now);
        var message = new WebSocketMessage(Opcode.Text, true, [], timeProvider: clock);
        Assert.Equal((now - DateTimeOffset.UnixEpoch).TotalSeconds, message.Timestamp, precision: 6);
        Assert.Equal(1, clock.Calls);
    }

    [Fact]
    public void Timestamp_Defaults_ToRealTime()
    {
        var before = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;
        var message = new WebSocketMessage(Opcode.Binary, false, []);
        var after = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;
        Assert.InRange(message.Timestamp, before - 0.001, after + 0.001);
    }

    [Fact]
    public void Content_Set_KeepsTheFirstOriginalOnly()
    {
        var first = "one"u8.ToArray();
        var message = new WebSocketMessage(Opcode.Text, true, first, 0);
        message.Content = "two"u8.ToArray();
        message.Content = "three"u8.ToArray();
        Assert.Equal("three", message.Text);
        Assert.Same(first, message.OriginalContent);
        Assert.Equal(Opcode.Text, message.OriginalType);
        Assert.True(message.IsModified);
    }

    [Fact]
    public void Content_Set_IdenticalBytes_IsNotAModification()
    {
        var message = new WebSocketMessage(Opcode.Binary, true, [1, 2, 3], 0);
        message.Content = [1, 2, 3];
        message.Content = message.Content;
        Assert.False(message.IsModified);
        Assert.Null(message.OriginalContent);
    }

    [Fact]
    public void Content_Set_Null_Throws()
    {
        var message = new WebSocketMessage(Opcode.Binary, true, [1], 0);
        Assert.Throws<ArgumentNullException>(() => message.Content = null!);
    }

    [Fact]
    public void Type_Change_RemembersTheOriginalType_AndContent()
    {
        var content = "{}"u8.ToArray();
        var message = new WebSocketMessage(Opcode.Text, true, content, 0);
        message.Type = Opcode.Text;
        Assert.False(message.IsModified);

        message.Type = Opcode.Binary;
        Assert.True(message.IsModified);
        Assert.Equal(Opcode.Text, message.OriginalType);
        Assert.Same(content, message.OriginalContent);

        message.Type = Opcode.Text;
        Assert.Equal(Opcode.Text, message.OriginalType);
    }

    [Fact]
    public void SetOriginal_RestoresAnImportedEdit()
    {
        var message = new WebSocketMessage(Opcode.Binary, true, [2], 0);
        message.SetOriginal([1], Opcode.Text);
        Assert.Equal(new byte[] { 1 }, message.OriginalContent);
        Assert.Equal(Opcode.Text, message.OriginalType);
        Assert.True(message.IsModified);
        Assert.Throws<ArgumentNullException>(() => message.SetOriginal(null!));
    }

    [Fact]
    public void ToString_ShowsDirectionAndContent()
    {
        Assert.Equal("client -> server text: hi", new WebSocketMessage(Opcode.Text, true, "hi"u8.ToArray(), 0).ToString());
        Assert.Equal("server -> client binary: 00FF", new WebSocketMessage(Opcode.Binary, false, [0x00, 0xFF], 0).ToString());
    }

    /// <summary>A clock the test sets; counts reads so the test sees the message asked it.</summary>
    private sealed class ManualTimeProvider(DateTimeOffset now) : TimeProvider
    {
        public int Calls { get; private set; }

        public override DateTimeOffset GetUtcNow()
        {
            Calls++;
            return now;
        }
    }
}
