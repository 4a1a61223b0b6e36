using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>Drives a relay into TCP backpressure: one peer floods, the other reads nothing.</summary>
internal static class Backpressure
{
    /// <summary>Sends binary frames of <paramref name="frameSize"/> bytes until the connection fails (the test or the proxy ends it).</summary>
    public static Task FloodAsync(RawWebSocket peer, int frameSize = 256 * 1024) => Task.Run(async () =>
    {
        var chunk = new byte[frameSize];
        try
        {
            while (true)
            {
                await peer.SendAsync(Opcode.Binary, chunk);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // The connection was ended.
        }
    });

    /// <summary>Waits until the flow's count of messages stops growing: the relay is stuck writing.</summary>
    public static async Task StalledAsync(HttpFlow flow)
    {
        var seen = -1L;
        for (var unchanged = 0; unchanged < 4;)
        {
            await Task.Delay(250);
            var now = flow.WebSocket!.TotalCount;
            unchanged = now == seen && now > 0 ? unchanged + 1 : 0;
            seen = now;
        }
    }
}
