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

    [Theory]
    [InlineData("7", false)]
    [InlineData(" \t 12 \t", false)]
    [InlineData("0", false)]
    [InlineData("+7", true)]
    [InlineData("-0", true)]
    [InlineData("7 7", true)]
    [InlineData("0x7", true)]
    [InlineData("7,7", true)]
    [InlineData("", true)]
    public void SaysWhetherAContentLengthIsDigitsAlone_HoweverTheHeadIsSplit(string value, bool malformed)
    {
        var bytes = Encoding.Latin1.GetBytes($"POST / HTTP/1.1\r\nContent-Length: {value}\r\nX-Next: +1\r\n\r\n");
        foreach (var size in new[] { 1, 3, bytes.Length })
        {
            var scanner = default(HeadFieldScanner);
            for (var at = 0; at < bytes.Length; at += size)
            {
                scanner.Feed(new ReadOnlySequence<byte>(bytes, at, Math.Min(size, bytes.Length - at)));
            }

            Assert.True(scanner.HasContentLength);
            Assert.Equal(malformed, scanner.ContentLengthMalformed);
        }
    }
}
