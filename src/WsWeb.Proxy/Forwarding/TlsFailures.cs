namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// Says why a TLS handshake failed, in words a user can act on. .NET reports "Authentication failed, see inner
/// exception" or a frame error; the cause is OpenSSL's reason (or the frame error) further in. The wording follows
/// mitmproxy's for the same failures.
/// </summary>
internal static class TlsFailures
{
    /// <summary>Why the handshake with an upstream server failed (the certificate check is not one of these: see <see cref="UpstreamCertificateException"/>).</summary>
    public static string DescribeUpstream(Exception exception)
    {
        var reason = Reason(exception);
        return reason switch
        {
            _ when Has(reason, "wrong version number", "packet length too long", "frame size", "corrupted frame", "http request")
                => $"the server does not speak TLS ({reason}).",
            _ when Has(reason, "protocol version", "unsupported protocol", "no protocols available", "version too low")
                => $"the server and WsWeb cannot agree on a TLS version: WsWeb speaks TLS 1.2 and 1.3 ({reason}).",
            _ when Has(reason, "certificate required")
                => $"the server asks for a client certificate, which WsWeb does not send ({reason}).",
            _ when Has(reason, "handshake failure", "no shared cipher", "no cipher")
                => $"the server refused the handshake: no cipher or signature both sides accept, or it wants a client certificate ({reason}).",
            _ when Has(reason, "unexpected eof", "connection reset", "forcibly closed", "end of file", "received an unexpected eof", "0 bytes")
                => $"the server closed the connection during the handshake ({reason}).",
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
        return reason switch
        {
            _ when exception is ArgumentException => $"WsWeb cannot make a certificate for '{host}' ({reason})",
            _ when Has(reason, "unknown ca", "bad certificate", "certificate unknown", "unsupported certificate", "certificate expired", "access denied")
                => $"the client does not accept WsWeb's certificate for {host}: install the WsWeb CA in it (the dashboard's Onboarding page) ({reason})",
            _ when Has(reason, "no application protocol") => $"the client offered no ALPN protocol WsWeb speaks: WsWeb speaks http/1.1 ({reason})",
            _ when Has(reason, "no shared cipher", "no suitable signature", "handshake failure") => $"the client and WsWeb share no cipher or signature algorithm ({reason})",
            _ when Has(reason, "protocol version", "unsupported protocol", "no protocols available") => $"the client and WsWeb cannot agree on a TLS version: WsWeb speaks TLS 1.2 and 1.3 ({reason})",
            _ when Has(reason, "wrong version number", "http request", "frame size", "corrupted frame") => $"the client does not speak TLS in the tunnel ({reason})",
            _ when Has(reason, "unexpected eof", "connection reset", "0 bytes", "end of file")
                => $"the client closed the connection during the handshake; a client that does not trust the WsWeb CA often does this ({reason})",
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
