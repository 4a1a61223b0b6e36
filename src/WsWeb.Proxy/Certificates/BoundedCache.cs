namespace WsWeb.Proxy.Certificates;

/// <summary>
/// A thread-safe least-recently-used cache whose values are created at most once per key, even
/// when many callers ask for a new key at the same moment.
/// </summary>
/// <remarks>
/// The lock only guards the bookkeeping; values are created outside it through a per-key
/// <see cref="Lazy{T}"/>, so a slow creation blocks only the callers waiting for that key.
/// A failed creation is forgotten, so the next caller retries instead of seeing a cached exception.
/// </remarks>
internal sealed class BoundedCache<TValue>
    where TValue : class
{
    private readonly object _gate = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries;
    private readonly LinkedList<Entry> _recency = new();

    public BoundedCache(int capacity, IEqualityComparer<string>? comparer = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _entries = new Dictionary<string, LinkedListNode<Entry>>(capacity, comparer ?? StringComparer.Ordinal);
    }

    public int Capacity { get; }

    public int Count
    {
        get { lock (_gate) { return _entries.Count; } }
    }

    public TValue GetOrAdd(string key, Func<string, TValue> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        LinkedListNode<Entry> node;
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out var found))
            {
                node = found;
                _recency.Remove(node);
                _recency.AddFirst(node);
            }
            else
            {
                var value = new Lazy<TValue>(() => factory(key), LazyThreadSafetyMode.ExecutionAndPublication);
                node = _recency.AddFirst(new Entry(key, value));
                _entries.Add(key, node);
                while (_entries.Count > Capacity)
                {
                    // An evicted entry still being created completes for the callers already
                    // holding its Lazy; it just is not found again.
                    var oldest = _recency.Last!;
                    _recency.RemoveLast();
                    _entries.Remove(oldest.Value.Key);
                }
            }
        }

        try
        {
            return node.Value.Value.Value;
        }
        catch
        {
            lock (_gate)
            {
                if (_entries.TryGetValue(key, out var current) && ReferenceEquals(current, node))
                {
                    _entries.Remove(key);
                    _recency.Remove(node);
                }
            }

            throw;
        }
    }

    private sealed record Entry(string Key, Lazy<TValue> Value);
}
