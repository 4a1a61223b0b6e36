using System.Net;
using System.Net.Sockets;
using System.Text;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Security;

/// <summary>
/// The web listener keeps Kestrel's data-rate limits, which the proxy listener turns off for the whole server: a client
/// that declares a request body and never sends it loses its connection instead of holding one of the listener's slots.
/// </summary>
public sealed class WebDataRateTests(WsWebApp app) : IClassFixture<WsWebApp>
{
    [Fact]
    public async Task A_declared_body_that_never_comes_is_cut_off()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, app.WebPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /api/rules HTTP/1.1\r\nHost: 127.0.0.1:{app.WebPort}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"filter\""));

        // 240 bytes a second after a 5 s grace, checked once a second: cut off well before Kestrel's 130 s keep-alive.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                answer.Write(buffer, 0, read);
            }
        }
        catch (IOException)
        {
            // A reset is a cut-off too.
        }

        Assert.False(timeout.IsCancellationRequested, "the connection was still open after 30 s");
        var text = Encoding.ASCII.GetString(answer.ToArray());
        Assert.True(text.Length == 0 || text.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), text);
    }
}
