using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace WsWeb.Proxy.Tests.Certificates;

/// <summary>A fresh directory under the temp folder, deleted with everything in it on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        // Owner-only, as WsWeb wants a data directory: under a umask of 002 a plain one would be refused.
        Root = UnixUsers.CreatePrivateDirectory(Path.Combine(Path.GetTempPath(), "wsweb-certs-" + Guid.NewGuid().ToString("N")));
    }

    public string Root { get; }

    public string Combine(params string[] parts) => Path.Combine([Root, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in /tmp are harmless; a failing cleanup must not fail the test.
        }
    }
}

/// <summary>A real TLS handshake over loopback TCP: one SslStream server, one SslStream client.</summary>
internal static class LoopbackTls
{
    /// <summary>
    /// Runs one handshake. The server picks its context from the SNI name, falling back to
    /// <paramref name="fallbackHost"/> when the client sends none (IP targets), as the proxy does
    /// with the CONNECT host. Returns the certificate the client saw; throws what the client threw.
    /// </summary>
    public static async Task<X509Certificate2> HandshakeAsync(
        Func<string, SslStreamCertificateContext> serverContext,
        string fallbackHost,
        SslClientAuthenticationOptions clientOptions)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var server = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptTcpClientAsync(timeout.Token);
            await using var ssl = new SslStream(accepted.GetStream());
            await ssl.AuthenticateAsServerAsync(
                (_, hello, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = serverContext(string.IsNullOrEmpty(hello.ServerName) ? fallbackHost : hello.ServerName),
                }),
                null,
                timeout.Token);
            var buffer = new byte[1];
            await ssl.ReadExactlyAsync(buffer, timeout.Token);
            await ssl.WriteAsync(buffer, timeout.Token);
            await ssl.FlushAsync(timeout.Token);
        });

        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            await using var ssl = new SslStream(client.GetStream());
            await ssl.AuthenticateAsClientAsync(clientOptions, timeout.Token);

            // Data both ways proves the keys on each side really match, not just the handshake.
            await ssl.WriteAsync(new byte[] { 42 }, timeout.Token);
            await ssl.FlushAsync(timeout.Token);
            var echo = new byte[1];
            await ssl.ReadExactlyAsync(echo, timeout.Token);
            Assert.Equal(42, echo[0]);
            await server;
            return X509CertificateLoader.LoadCertificate(ssl.RemoteCertificate!.GetRawCertData());
        }
        finally
        {
            listener.Stop();
            // The server fails too when the client rejects it; the client's error is the one that matters.
            await Task.WhenAny(server);
        }
    }

    /// <summary>Client options that trust exactly <paramref name="root"/> and nothing from the system store.</summary>
    public static SslClientAuthenticationOptions TrustOnly(X509Certificate2 root, string targetHost) => new()
    {
        TargetHost = targetHost,
        CertificateChainPolicy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            CustomTrustStore = { root },
            RevocationMode = X509RevocationMode.NoCheck,
        },
    };
}
