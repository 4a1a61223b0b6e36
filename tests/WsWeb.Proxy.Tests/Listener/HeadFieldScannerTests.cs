using System.Buffers;
using System.Text;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.Tests.Listener;

public sealed class HeadFieldScannerTests
{
    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\r\n", null, false)]
    [InlineData("GET / HTTP/1.1\r\nConnection: close, X-Foo\r\n\r\n", "close, X-Foo", false)]
    [InlineData("GET / HTTP/1.1\r\nCONNECTION:\t X-Foo \t\r\nconnection: close\r\nContent-Length: 0\r\n\r\n", "X-Foo, close", true)]
    [InlineData("GET / HTTP/1.1\r\nConnection:\r\nConnection: a\r\n\r\n", "a", false)]
    [InlineData("GET / HTTP/1.1\r\nX-Connection: a\r\nConnectionX: b\r\nContent-Lengthy: 1\r\n\r\n", null, false)]
    public void FindsTheConnectionValueAndContentLength_HoweverTheHeadIsSplit(string head, string? connection, bool contentLength)
    {
        var bytes = Encoding.Latin1.GetBytes(head);
        foreach (var size in new[] { 1, 7, bytes.Length })
        {
            var scanner = default(HeadFieldScanner);
            for (var at = 0; at < bytes.Length; at += size)
            {
                scanner.Feed(new ReadOnlySequence<byte>(bytes, at, Math.Min(size, bytes.Length - at)));
            }

            Assert.Equal(connection, scanner.Connection);
            Assert.Equal(contentLength, scanner.HasContentLength);
        }
    }
}
