namespace WsWeb.Core.Flows;

/// <summary>One side of a proxied connection (mitmproxy's <c>connection.Client</c>/<c>Server</c>).</summary>
public sealed class ConnectionInfo
{
    public string Id { get; set; } = Guid.NewGuid().ToString();

    /// <summary>The remote end as "host:port" (for the client: the client's address).</summary>
    public string? PeerName { get; set; }

    /// <summary>Our end of the socket as "host:port".</summary>
    public string? SockName { get; set; }

    /// <summary>For the server side: the address we were asked to reach ("example.com:443").</summary>
    public string? Address { get; set; }

    public bool TlsEstablished { get; set; }

    /// <summary>SNI sent by the client (client side) or by us upstream (server side).</summary>
    public string? Sni { get; set; }

    public string? TlsVersion { get; set; }

    public string? Cipher { get; set; }

    public string? Alpn { get; set; }

    /// <summary>Subject of the certificate the server presented (server side) or we presented (client side).</summary>
    public string? CertificateSubject { get; set; }

    /// <summary>DER of the peer certificate chain, leaf first (server side only).</summary>
    public IReadOnlyList<byte[]> CertificateChain { get; set; } = [];

    public double? TimestampStart { get; set; }

    public double? TimestampTcpSetup { get; set; }

    public double? TimestampTlsSetup { get; set; }

    public double? TimestampEnd { get; set; }

    public string? Error { get; set; }

    /// <summary>Takes over another record of the same connection (a flow sent over a connection opened for an earlier one).</summary>
    public void CopyFrom(ConnectionInfo other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Id = other.Id;
        PeerName = other.PeerName;
        SockName = other.SockName;
        Address = other.Address;
        TlsEstablished = other.TlsEstablished;
        Sni = other.Sni;
        TlsVersion = other.TlsVersion;
        Cipher = other.Cipher;
        Alpn = other.Alpn;
        CertificateSubject = other.CertificateSubject;
        CertificateChain = other.CertificateChain;
        TimestampStart = other.TimestampStart;
        TimestampTcpSetup = other.TimestampTcpSetup;
        TimestampTlsSetup = other.TimestampTlsSetup;
        TimestampEnd = other.TimestampEnd;
        Error = other.Error;
    }
}
