namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// Says why a TLS handshake failed, in words a user can act on. .NET reports "Authentication failed, see inner
/// exception" or a frame error; the cause is OpenSSL's reason (or the frame error) further in. The wording follows
/// mitmproxy's for the same failures.
/// </summary>
internal static class TlsFailures
{
    /// <summary>What went wrong, read from OpenSSL's reason (or .NET's frame error); each side says it in its own words.</summary>
    private enum Failure
    {
        Other,
        Untrusted,
        NoAlpn,
        NotTls,
        Version,
        ClientCertificate,
        NoCommonCipher,
        Closed,
    }

    private static Failure Classify(string reason) => reason switch
    {
        _ when Has(reason, "unknown ca", "bad certificate", "certificate unknown", "unsupported certificate", "certificate expired", "access denied") => Failure.Untrusted,
        _ when Has(reason, "no application protocol") => Failure.NoAlpn,
        _ when Has(reason, "wrong version number", "packet length too long", "frame size", "corrupted frame", "http request") => Failure.NotTls,
        _ when Has(reason, "protocol version", "unsupported protocol", "no protocols available", "version too low") => Failure.Version,
        _ when Has(reason, "certificate required") => Failure.ClientCertificate,
        _ when Has(reason, "handshake failure", "no shared cipher", "no cipher", "no suitable signature") => Failure.NoCommonCipher,
        _ when Has(reason, "unexpected eof", "connection reset", "forcibly closed", "end of file", "0 bytes") => Failure.Closed,
        _ => Failure.Other,
    };

    /// <summary>Why the handshake with an upstream server failed (the certificate check is not one of these: see <see cref="UpstreamCertificateException"/>).</summary>
    public static string DescribeUpstream(Exception exception)
    {
        var reason = Reason(exception);
        return Classify(reason) switch
        {
            Failure.NotTls => $"the server does not speak TLS ({reason}).",
            Failure.Version => $"the server and WsWeb cannot agree on a TLS version: WsWeb speaks TLS 1.2 and 1.3 ({reason}).",
            Failure.ClientCertificate => $"the server asks for a client certificate, which WsWeb does not send ({reason}).",
            Failure.NoCommonCipher => $"the server refused the handshake: no cipher or signature both sides accept, or it wants a client certificate ({reason}).",
            Failure.Closed => $"the server closed the connection during the handshake ({reason}).",
            _ => $"the handshake failed: {reason}.",
        };
    }

    /// <summary>
    /// Why a client's handshake with WsWeb failed. Only the alerts a client sends when it does not accept the certificate
    /// blame the trust in WsWeb's CA: a client that offers nothing WsWeb speaks, or gives up, is told apart.
    /// </summary>
    public static string DescribeClient(Exception exception, string host)
    {
        if (exception is OperationCanceledException)
        {
            return "the client sent no complete handshake in time";
        }

        var reason = Reason(exception);
        if (exception is ArgumentException)
        {
            return $"WsWeb cannot make a certificate for '{host}' ({reason})";
        }

        return Classify(reason) switch
        {
            Failure.Untrusted => $"the client does not accept WsWeb's certificate for {host}: install the WsWeb CA in it (the dashboard's Onboarding page) ({reason})",
            Failure.NoAlpn => $"the client offered no ALPN protocol WsWeb speaks: WsWeb speaks http/1.1 ({reason})",
            Failure.NoCommonCipher => $"the client and WsWeb share no cipher or signature algorithm ({reason})",
            Failure.Version => $"the client and WsWeb cannot agree on a TLS version: WsWeb speaks TLS 1.2 and 1.3 ({reason})",
            Failure.NotTls => $"the client does not speak TLS in the tunnel ({reason})",
            Failure.Closed => $"the client closed the connection during the handshake; a client that does not trust the WsWeb CA often does this ({reason})",
            _ => reason,
        };
    }

    /// <summary>The innermost message that says more than "see inner exception".</summary>
    public static string Reason(Exception exception)
    {
        var reason = exception.Message;
        for (var e = exception.InnerException; e is not null; e = e.InnerException)
        {
            if (!string.IsNullOrWhiteSpace(e.Message))
            {
                reason = e.Message;
            }
        }

        return reason.TrimEnd('.');
    }

    private static bool Has(string reason, params ReadOnlySpan<string> parts)
    {
        foreach (var part in parts)
        {
            if (reason.Contains(part, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
