namespace WsWeb.Core.WebSockets;

/// <summary>
/// Reuses the arrays of large captured messages once retention has evicted them. Every fresh large
/// array costs the kernel a page fault and a zeroed page per 4 KiB (the GC hands back the memory of
/// evicted messages and asks for new pages), which dominated the cost of relaying 1 MiB messages.
/// </summary>
/// <remarks>
/// <see cref="WebSocketMessage.Content"/> is an exact-length <c>byte[]</c>, so an array can only be
/// reused for a message of the same length; streams of equal-sized chunks (file transfers, media
/// frames, benchmarks) benefit, others simply allocate as before. A fixed set of slots and a byte
/// bound keep what the pool holds small; an array that does not fit is left to the GC.
/// </remarks>
internal sealed class ContentPool(int slots = 64, long maxBytes = 64L * 1024 * 1024)
{
    /// <summary>Smaller arrays are cheap for the GC (they come from reused gen0 memory) and are never pooled.</summary>
    public const int MinLength = 64 * 1024;

    public static ContentPool Shared { get; } = new();

    private readonly byte[]?[] _slots = new byte[]?[slots];
    private long _pooledBytes;

    /// <summary>Bytes currently held for reuse.</summary>
    public long PooledBytes => Interlocked.Read(ref _pooledBytes);

    /// <summary>An array of exactly <paramref name="length"/> bytes, reused when one is pooled; its content is undefined.</summary>
    public byte[] Rent(int length)
    {
        if (length >= MinLength)
        {
            for (var i = 0; i < _slots.Length; i++)
            {
                var candidate = Volatile.Read(ref _slots[i]);
                if (candidate is not null && candidate.Length == length
                    && Interlocked.CompareExchange(ref _slots[i], null, candidate) == candidate)
                {
                    Interlocked.Add(ref _pooledBytes, -length);
                    return candidate;
                }
            }
        }

        return length == 0 ? [] : GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Offers an array nobody references any more; false when it is too small or the pool is full.</summary>
    public bool Return(byte[] array)
    {
        if (array.Length < MinLength || Interlocked.Add(ref _pooledBytes, array.Length) > maxBytes)
        {
            if (array.Length >= MinLength)
            {
                Interlocked.Add(ref _pooledBytes, -array.Length);
            }

            return false;
        }

        for (var i = 0; i < _slots.Length; i++)
        {
            if (Volatile.Read(ref _slots[i]) is null && Interlocked.CompareExchange(ref _slots[i], array, null) is null)
            {
                return true;
            }
        }

        Interlocked.Add(ref _pooledBytes, -array.Length);
        return false;
    }
}
