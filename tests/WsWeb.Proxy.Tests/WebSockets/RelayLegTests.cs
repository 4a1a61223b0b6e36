using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

public sealed class RelayLegTests
{
    [Fact]
    public async Task CompletingALegWhoseStreamWasAborted_DropsWhatIsUnsentWithoutThrowing()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = await listener.AcceptTcpClientAsync();
        var stream = client.GetStream();
        var leg = new RelayLeg(
            "server",
            isClient: false,
            PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)),
            PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)),
            stream.Dispose,
            transport: stream);

        // A frame written but not yet flushed when the peer's connection is aborted (as the relay does on a dead server).
        leg.Output.Write("unsent"u8);
        leg.Abort();

        await leg.CompleteAsync();

        Assert.True(leg.CloseSent);
        Assert.Throws<InvalidOperationException>(() => leg.Output.GetSpan());
        leg.Dispose();
    }
}
