using System.Net;
using System.Net.Sockets;

namespace WsWeb.Proxy.Certificates;

/// <summary>A host as it goes into a certificate: a lower-case DNS name or an IP address.</summary>
/// <param name="Name">The canonical form, also the cache key (so <c>Example.COM.</c> and <c>example.com</c> share a leaf).</param>
/// <param name="Address">Set when the host is an IP literal, which needs an IP SAN entry rather than a DNS one.</param>
internal readonly record struct HostName(string Name, IPAddress? Address)
{
    private const int MaxNameLength = 253;
    private const int MaxLabelLength = 63;

    private static readonly System.Globalization.IdnMapping Idn = new();

    /// <summary>
    /// The name a client's SNI is recorded and used upstream as: the A-label form that went on the wire (SslStream hands
    /// the server the Unicode form), or null when it is no name a certificate can carry; the CONNECT host serves then.
    /// </summary>
    public static string? AsSentSni(string? sni)
    {
        if (string.IsNullOrEmpty(sni))
        {
            return null;
        }

        try
        {
            return Parse(sni).Name;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Normalises a SNI name, a CONNECT host or an IP literal (IPv6 with or without brackets).</summary>
    /// <exception cref="ArgumentException">Not a host name we can put in a certificate.</exception>
    public static HostName Parse(string hostOrIp)
    {
        ArgumentNullException.ThrowIfNull(hostOrIp);
        var host = hostOrIp.Trim();
        if (host.Length > 2 && host[0] == '[' && host[^1] == ']')
        {
            host = host[1..^1];
        }

        if (host.Contains(':', StringComparison.Ordinal))
        {
            if (IPAddress.TryParse(host, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6)
            {
                // A zone id (fe80::1%eth0) names a local interface; it has no place in a SAN entry.
                v6.ScopeId = 0;
                return new HostName(v6.ToString(), v6);
            }

            throw new ArgumentException($"'{hostOrIp}' is not a valid host name or IP address.", nameof(hostOrIp));
        }

        if (host.EndsWith('.'))
        {
            host = host[..^1];
        }

        // IPAddress.TryParse also accepts shorthand such as "10.1" or "1234"; only the dotted quad
        // is an IP literal in a URL, so anything else is treated as a name.
        if (IPAddress.TryParse(host, out var v4) && v4.AddressFamily == AddressFamily.InterNetwork
            && string.Equals(v4.ToString(), host, StringComparison.Ordinal))
        {
            return new HostName(host, v4);
        }

        if (!System.Text.Ascii.IsValid(host))
        {
            // SNI goes on the wire as A-labels (RFC 6066), but SslStream hands the server the name decoded to Unicode
            // ("bücher.example" for xn--bcher-kva.example): the certificate needs the A-label form back.
            try
            {
                host = Idn.GetAscii(host);
            }
            catch (ArgumentException)
            {
                throw new ArgumentException($"'{hostOrIp}' is not a valid host name or IP address.", nameof(hostOrIp));
            }
        }

        host = host.ToLowerInvariant();
        if (!IsValidDnsName(host))
        {
            throw new ArgumentException($"'{hostOrIp}' is not a valid host name or IP address.", nameof(hostOrIp));
        }

        return new HostName(host, null);
    }

    // Only A-labels here (Parse maps Unicode names to them first). Wildcards are rejected: every leaf names exactly
    // one host. Underscores are allowed because real hosts use them and browsers accept them.
    private static bool IsValidDnsName(string name)
    {
        if (name.Length is 0 or > MaxNameLength)
        {
            return false;
        }

        var labelLength = 0;
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (c == '.')
            {
                if (labelLength == 0 || name[i - 1] == '-')
                {
                    return false;
                }

                labelLength = 0;
                continue;
            }

            var ok = c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' || (c == '-' && labelLength > 0);
            if (!ok || ++labelLength > MaxLabelLength)
            {
                return false;
            }
        }

        return name[^1] != '-';
    }

    public override string ToString() => Name;
}
