using System.Text;

namespace WsWeb.Core.WebSockets;

/// <summary>
/// One WebSocket message exchanged between the peers; a port of mitmproxy's <c>WebSocketMessage</c>.
/// Fragmented messages are reassembled into one instance. Content is always bytes so text and
/// binary never get confused; <see cref="Text"/> is a UTF-8 view for text messages.
/// </summary>
public sealed class WebSocketMessage
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Lease bits for pooled content (see ContentPool): shared with someone outside the relay, evicted
    // by retention, given back; the pin count (relay writes still using the array) is kept above them.
    private const int SharedBit = 1;
    private const int EvictedBit = 2;
    private const int ReleasedBit = 4;
    private const int OnePin = 8;

    private Opcode _type;
    private byte[] _content;
    private ContentPool? _pool;
    private int _lease;

    public WebSocketMessage(
        Opcode type,
        bool fromClient,
        byte[] content,
        double? timestamp = null,
        bool dropped = false,
        bool injected = false,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(content);
        _type = ValidateType(type);
        FromClient = fromClient;
        _content = content;
        Timestamp = timestamp ?? Timestamps.Now(timeProvider ?? TimeProvider.System);
        Dropped = dropped;
        Injected = injected;
    }

    /// <summary>Message type: <see cref="Opcode.Text"/> or <see cref="Opcode.Binary"/>.</summary>
    public Opcode Type
    {
        get => _type;
        set
        {
            var validated = ValidateType(value);
            if (validated != _type)
            {
                RememberOriginal();
                _type = validated;
            }
        }
    }

    /// <summary>True if the client sent this message, false if the server did.</summary>
    public bool FromClient { get; set; }

    /// <summary>The payload. Setting different bytes keeps the first content in <see cref="OriginalContent"/>.</summary>
    /// <exception cref="InvalidOperationException">
    /// Retention evicted this message before anyone read its content, and the array was reused.
    /// </exception>
    public byte[] Content
    {
        get => SharedContent();
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            var current = SharedContent();
            if (ReferenceEquals(value, current) || value.AsSpan().SequenceEqual(current))
            {
                return;
            }

            RememberOriginal();
            _content = value;
        }
    }

    /// <summary>Unix time in seconds when the message was received or created.</summary>
    public double Timestamp { get; set; }

    /// <summary>True if the message was not forwarded to the other peer.</summary>
    public bool Dropped { get; set; }

    /// <summary>True if the message was created by the proxy (inject) rather than sent by a peer.</summary>
    public bool Injected { get; set; }

    /// <summary>The content as it arrived, when an addon, rule or user changed it; otherwise null.</summary>
    public byte[]? OriginalContent { get; private set; }

    /// <summary>The type as it arrived, when it was changed; otherwise null.</summary>
    public Opcode? OriginalType { get; private set; }

    /// <summary>True once content or type differ from what arrived on the wire.</summary>
    public bool IsModified => OriginalContent is not null;

    /// <summary>Position of the message in its flow (0-based), assigned when it is recorded.</summary>
    public long Index { get; internal set; } = -1;

    /// <summary>
    /// What the peer sent, counted when recorded (the original's length for a message recorded already edited);
    /// totals and retention accounting use it because edits change <see cref="Content"/> later.
    /// </summary>
    internal int RecordedLength { get; set; }

    public bool IsText => _type == Opcode.Text;

    /// <summary>The content decoded as UTF-8. Only text messages have text.</summary>
    /// <exception cref="InvalidOperationException">The message is binary.</exception>
    /// <exception cref="DecoderFallbackException">
    /// The content is not valid UTF-8 (an addon set such bytes, or an imported file held them), as mitmproxy's
    /// <c>content.decode()</c> raises: a replacement character read here and written back would change the message.
    /// </exception>
    public string Text
    {
        get
        {
            EnsureText();
            return StrictUtf8.GetString(SharedContent());
        }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            EnsureText();
            Content = StrictUtf8.GetBytes(value);
        }
    }

    /// <summary>Prevents the message from being forwarded to the other peer.</summary>
    public void Drop() => Dropped = true;

    /// <summary>Deprecated alias of <see cref="Drop"/>, as in mitmproxy.</summary>
    [Obsolete("Use Drop() instead.")]
    public void Kill() => Drop();

    public WebSocketMessageState GetState() =>
        new((int)_type, FromClient, SharedContent(), Timestamp, Dropped, Injected);

    public void SetState(WebSocketMessageState state)
    {
        ArgumentNullException.ThrowIfNull(state.Content);
        SharedContent();
        _type = ValidateType((Opcode)state.Type);
        FromClient = state.FromClient;
        _content = state.Content;
        Timestamp = state.Timestamp;
        Dropped = state.Dropped;
        Injected = state.Injected;
        OriginalContent = null;
        OriginalType = null;
    }

    public static WebSocketMessage FromState(WebSocketMessageState state) =>
        new((Opcode)state.Type, state.FromClient, state.Content ?? throw new ArgumentException("Content is required.", nameof(state)), state.Timestamp, state.Dropped, state.Injected);

    /// <summary>Restores what an importer read for an edited message.</summary>
    public void SetOriginal(byte[] originalContent, Opcode? originalType = null)
    {
        ArgumentNullException.ThrowIfNull(originalContent);
        OriginalContent = originalContent;
        OriginalType = originalType;
    }

    public override string ToString()
    {
        var direction = FromClient ? "client -> server" : "server -> client";
        if (!TryShareContent(out var content))
        {
            return $"{direction} {(IsText ? "text" : "binary")}: (content released)";
        }

        return IsText
            ? $"{direction} text: {Encoding.UTF8.GetString(content)}"
            : $"{direction} binary: {Convert.ToHexString(content)}";
    }

    private void EnsureText()
    {
        if (_type != Opcode.Text)
        {
            throw new InvalidOperationException("Binary WebSocket messages have no text; use Content.");
        }
    }

    private void RememberOriginal()
    {
        if (OriginalContent is null)
        {
            OriginalContent = SharedContent();
            OriginalType = _type;
        }
    }

    /// <summary>Length of the current content without sharing it (retention accounting).</summary>
    internal int ContentLength => _content.Length;

    /// <summary>
    /// The relay's own view of the content while it holds a pin (<see cref="UsePool"/>): reading it
    /// does not count as sharing, so the array can still be reused once the message is evicted.
    /// </summary>
    internal byte[] PinnedContent => _content;

    /// <summary>
    /// Marks the content as coming from <paramref name="pool"/> and pins it for the caller, who must
    /// <see cref="Unpin"/> when done writing it. Call before anyone else can see the message.
    /// </summary>
    internal void UsePool(ContentPool pool)
    {
        _pool = pool;
        _lease = OnePin;
    }

    internal void Unpin()
    {
        if (_pool is not null)
        {
            TryRelease(Interlocked.Add(ref _lease, -OnePin));
        }
    }

    /// <summary>Retention dropped the message: its array goes back to the pool unless shared or still pinned.</summary>
    internal void Evict()
    {
        if (_pool is not null)
        {
            TryRelease(Interlocked.Or(ref _lease, EvictedBit) | EvictedBit);
        }
    }

    /// <summary>
    /// Hands out the array for good: once shared, it is never reused. Whoever reads content from outside
    /// the relay (addons, REST, the hub, exports, filters, snapshots of the list) goes through here.
    /// </summary>
    internal byte[] SharedContent() => TryShareContent(out var content)
        ? content
        : throw new InvalidOperationException($"The content of message {Index} was released: retention evicted the message before anyone read it.");

    /// <returns>False when the content was already released (see <see cref="Evict"/>).</returns>
    private bool TryShareContent(out byte[] content)
    {
        if (_pool is not null)
        {
            var lease = Volatile.Read(ref _lease);
            while ((lease & SharedBit) == 0)
            {
                if ((lease & ReleasedBit) != 0)
                {
                    content = [];
                    return false;
                }

                var seen = Interlocked.CompareExchange(ref _lease, lease | SharedBit, lease);
                if (seen == lease)
                {
                    break;
                }

                lease = seen;
            }
        }

        content = _content;
        return true;
    }

    private void TryRelease(int lease)
    {
        // Only an evicted, unshared, unpinned message gives its array back, and only once.
        if (lease == EvictedBit && Interlocked.CompareExchange(ref _lease, EvictedBit | ReleasedBit, EvictedBit) == EvictedBit)
        {
            var array = _content;
            _content = [];
            _pool!.Return(array);
        }
    }

    private static Opcode ValidateType(Opcode type) => type is Opcode.Text or Opcode.Binary
        ? type
        : throw new ArgumentOutOfRangeException(nameof(type), type, "A WebSocket message is either Text or Binary.");
}
