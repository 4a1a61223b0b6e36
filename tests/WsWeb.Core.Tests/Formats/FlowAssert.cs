using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Core.Tests.Formats;

/// <summary>Field-by-field equality of flows, with the field named in the failure.</summary>
internal static class FlowAssert
{
    public static void Imported(HttpFlow flow)
    {
        Assert.True(flow.IsImported);
        Assert.False(flow.IsLive);
    }

    public static void Equal(HttpFlow expected, HttpFlow actual)
    {
        Imported(actual);
        Same("Id", expected.Id, actual.Id);
        Same("TimestampCreated", expected.TimestampCreated, actual.TimestampCreated);
        Same("Marked", expected.Marked, actual.Marked);
        Same("Error", expected.Error, actual.Error);
        Same("IsReplay", expected.IsReplay, actual.IsReplay);
        Same("ReplayOf", expected.ReplayOf, actual.ReplayOf);
        Request(expected.Request, actual.Request);
        if (expected.Response is null)
        {
            Assert.Null(actual.Response);
        }
        else
        {
            Response(expected.Response, Assert.IsType<HttpResponseData>(actual.Response));
        }

        Connection("ClientConn", expected.ClientConn, actual.ClientConn);
        Connection("ServerConn", expected.ServerConn, actual.ServerConn);
        if (expected.WebSocket is null)
        {
            Assert.Null(actual.WebSocket);
        }
        else
        {
            WebSocket(expected.WebSocket, Assert.IsType<WebSocketData>(actual.WebSocket), exactExtras: true);
        }
    }

    public static void Request(HttpRequestData e, HttpRequestData a)
    {
        Same("Request.Method", e.Method, a.Method);
        Same("Request.Scheme", e.Scheme, a.Scheme);
        Same("Request.Host", e.Host, a.Host);
        Same("Request.Port", e.Port, a.Port);
        Same("Request.Path", e.Path, a.Path);
        Same("Request.HttpVersion", e.HttpVersion, a.HttpVersion);
        Assert.Equal(e.Headers.ToList(), a.Headers.ToList());
        Same("Request.Content", e.Content, a.Content);
        Same("Request.ContentLength", e.ContentLength, a.ContentLength);
        Same("Request.ContentTruncated", e.ContentTruncated, a.ContentTruncated);
        Same("Request.TimestampStart", e.TimestampStart, a.TimestampStart);
        Same("Request.TimestampEnd", e.TimestampEnd, a.TimestampEnd);
    }

    public static void Response(HttpResponseData e, HttpResponseData a)
    {
        Same("Response.StatusCode", e.StatusCode, a.StatusCode);
        Same("Response.Reason", e.Reason, a.Reason);
        Same("Response.HttpVersion", e.HttpVersion, a.HttpVersion);
        Assert.Equal(e.Headers.ToList(), a.Headers.ToList());
        Same("Response.Content", e.Content, a.Content);
        Same("Response.ContentLength", e.ContentLength, a.ContentLength);
        Same("Response.ContentTruncated", e.ContentTruncated, a.ContentTruncated);
        Same("Response.TimestampStart", e.TimestampStart, a.TimestampStart);
        Same("Response.TimestampEnd", e.TimestampEnd, a.TimestampEnd);
    }

    public static void Connection(string name, ConnectionInfo e, ConnectionInfo a)
    {
        Same($"{name}.Id", e.Id, a.Id);
        Same($"{name}.PeerName", e.PeerName, a.PeerName);
        Same($"{name}.SockName", e.SockName, a.SockName);
        Same($"{name}.Address", e.Address, a.Address);
        Same($"{name}.TlsEstablished", e.TlsEstablished, a.TlsEstablished);
        Same($"{name}.Sni", e.Sni, a.Sni);
        Same($"{name}.TlsVersion", e.TlsVersion, a.TlsVersion);
        Same($"{name}.Cipher", e.Cipher, a.Cipher);
        Same($"{name}.Alpn", e.Alpn, a.Alpn);
        Same($"{name}.CertificateSubject", e.CertificateSubject, a.CertificateSubject);
        Same($"{name}.CertificateChain.Count", e.CertificateChain.Count, a.CertificateChain.Count);
        for (var i = 0; i < e.CertificateChain.Count; i++)
        {
            Same($"{name}.CertificateChain[{i}]", e.CertificateChain[i], a.CertificateChain[i]);
        }

        Same($"{name}.TimestampStart", e.TimestampStart, a.TimestampStart);
        Same($"{name}.TimestampTcpSetup", e.TimestampTcpSetup, a.TimestampTcpSetup);
        Same($"{name}.TimestampTlsSetup", e.TimestampTlsSetup, a.TimestampTlsSetup);
        Same($"{name}.TimestampEnd", e.TimestampEnd, a.TimestampEnd);
        Same($"{name}.Error", e.Error, a.Error);
    }

    /// <summary>Messages and close; with <paramref name="exactExtras"/> also edits, indices and control counts.</summary>
    public static void WebSocket(WebSocketData e, WebSocketData a, bool exactExtras)
    {
        Same("WebSocket.Messages.Count", e.Messages.Count, a.Messages.Count);
        for (var i = 0; i < e.Messages.Count; i++)
        {
            Message(i, e.Messages[i], a.Messages[i], exactExtras);
        }

        Same("WebSocket.ClosedByClient", e.ClosedByClient, a.ClosedByClient);
        Same("WebSocket.CloseCode", e.CloseCode, a.CloseCode);
        Same("WebSocket.CloseReason", e.CloseReason, a.CloseReason);
        Same("WebSocket.TimestampEnd", e.TimestampEnd, a.TimestampEnd);
        if (exactExtras)
        {
            Same("WebSocket.TrimmedCount", e.TrimmedCount, a.TrimmedCount);
            Same("WebSocket.ClientPings", e.ClientPings, a.ClientPings);
            Same("WebSocket.ServerPings", e.ServerPings, a.ServerPings);
            Same("WebSocket.ClientPongs", e.ClientPongs, a.ClientPongs);
            Same("WebSocket.ServerPongs", e.ServerPongs, a.ServerPongs);
        }
    }

    public static void Message(int i, WebSocketMessage e, WebSocketMessage a, bool exactExtras)
    {
        Same($"Messages[{i}].Type", e.Type, a.Type);
        Same($"Messages[{i}].FromClient", e.FromClient, a.FromClient);
        Same($"Messages[{i}].Content", e.Content, a.Content);
        Same($"Messages[{i}].Timestamp", e.Timestamp, a.Timestamp);
        if (exactExtras)
        {
            Same($"Messages[{i}].Dropped", e.Dropped, a.Dropped);
            Same($"Messages[{i}].Injected", e.Injected, a.Injected);
            Same($"Messages[{i}].Index", e.Index, a.Index);
            Same($"Messages[{i}].OriginalContent", e.OriginalContent, a.OriginalContent);
            Same($"Messages[{i}].OriginalType", e.OriginalType, a.OriginalType);
        }
    }

    private static void Same<T>(string field, T expected, T actual)
    {
        var equal = expected is byte[] eb && actual is byte[] ab
            ? eb.AsSpan().SequenceEqual(ab)
            : EqualityComparer<T>.Default.Equals(expected, actual);
        Assert.True(equal, $"{field}: expected {Show(expected)}, got {Show(actual)}");
    }

    private static string Show(object? value) => value switch
    {
        null => "null",
        byte[] bytes => Convert.ToHexString(bytes),
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
