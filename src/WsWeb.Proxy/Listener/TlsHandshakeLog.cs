namespace WsWeb.Proxy.Listener;

/// <summary>One client TLS handshake with WsWeb that failed: no flow is made for it (as in mitmproxy), so this is where it shows.</summary>
/// <param name="Timestamp">Unix seconds.</param>
/// <param name="Client">The client's address.</param>
/// <param name="Host">The CONNECT target the handshake was for.</param>
/// <param name="Reason">Why, in words a user can act on (<see cref="Forwarding.TlsFailures.DescribeClient"/>).</param>
public sealed record TlsHandshakeFailure(double Timestamp, string Client, string Host, string Reason);

/// <summary>
/// Counts client TLS handshakes and keeps the last few that failed, for the onboarding page and /healthz: a client
/// that does not trust the CA yet is the first thing that goes wrong, and it leaves no flow to look at.
/// </summary>
public sealed class TlsHandshakeLog
{
    /// <summary>How many failures are kept, newest first.</summary>
    public const int Capacity = 20;

    private readonly Lock _gate = new();
    private readonly Queue<TlsHandshakeFailure> _recent = new(Capacity);
    private long _succeeded;
    private long _failed;

    public long Succeeded => Interlocked.Read(ref _succeeded);

    public long Failed => Interlocked.Read(ref _failed);

    public void RecordSuccess() => Interlocked.Increment(ref _succeeded);

    public void RecordFailure(TlsHandshakeFailure failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        Interlocked.Increment(ref _failed);
        lock (_gate)
        {
            if (_recent.Count == Capacity)
            {
                _recent.Dequeue();
            }

            _recent.Enqueue(failure);
        }
    }

    /// <summary>The failures kept, newest first.</summary>
    public IReadOnlyList<TlsHandshakeFailure> Recent()
    {
        lock (_gate)
        {
            return [.. _recent.Reverse()];
        }
    }
}
