using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using WsWeb.Proxy.Listener;
using WsWeb.Proxy.Tests.Infrastructure;
using WsWeb.Tests.Shared;

namespace WsWeb.Proxy.Tests.Listener;

/// <summary>mitmproxy's block_global / block_private: who may use a proxy that listens beyond loopback.</summary>
public sealed class ClientAddressPolicyTests
{
    /// <summary>Each row as Python's ipaddress (3.12.4 and later; what mitmproxy's block addon asks) classifies it.</summary>
    [Theory]
    [InlineData("8.8.8.8", false, true)]
    [InlineData("172.32.0.1", false, true)]
    [InlineData("224.0.0.1", false, true)]
    [InlineData("192.0.0.9", false, true)]
    [InlineData("100.64.0.1", false, false)]
    [InlineData("192.0.2.2", true, false)]
    [InlineData("10.1.2.3", true, false)]
    [InlineData("172.31.255.255", true, false)]
    [InlineData("169.254.1.1", true, false)]
    [InlineData("198.18.0.1", true, false)]
    [InlineData("240.0.0.1", true, false)]
    [InlineData("fd00::2", true, false)]
    [InlineData("fe80::1", true, false)]
    [InlineData("2001:db8::1", true, false)]
    [InlineData("2001::1", true, false)]
    [InlineData("2606:4700::1", false, true)]
    [InlineData("64:ff9b::1", false, true)]
    [InlineData("192.0.0.5", true, false)]
    [InlineData("192.0.0.10", false, true)]
    [InlineData("2001:4:112::1", false, true)]
    [InlineData("2001:1::1", false, true)]
    [InlineData("2001:30::1", false, true)]
    [InlineData("2001:2::1", true, false)]
    [InlineData("2002::1", true, false)]
    [InlineData("3fff::1", true, false)]
    [InlineData("64:ff9b:1::1", true, false)]
    public void ClassifiesAddressesAsPythonsIpaddress(string text, bool isPrivate, bool isGlobal)
    {
        var address = IPAddress.Parse(text);

        Assert.Equal(isPrivate, ClientAddressPolicy.IsPrivate(address));
        Assert.Equal(isGlobal, ClientAddressPolicy.IsGlobal(address, ClientAddressPolicy.IsPrivate(address)));
    }

    [Theory]
    [InlineData("8.8.8.8", true, false, "--block-global")]
    [InlineData("::ffff:8.8.8.8", true, false, "--block-global")]
    [InlineData("8.8.8.8", false, false, null)]
    [InlineData("10.0.0.5", true, false, null)]
    [InlineData("10.0.0.5", true, true, "--block-private")]
    [InlineData("::ffff:10.0.0.5", false, true, "--block-private")]
    [InlineData("100.64.0.1", true, true, null)]
    [InlineData("127.0.0.1", true, true, null)]
    [InlineData("127.9.9.9", true, true, null)]
    [InlineData("::1", true, true, null)]
    public void NamesTheOptionThatRefusesAClient(string client, bool blockGlobal, bool blockPrivate, string? expected)
    {
        var policy = new ClientAddressPolicy(blockGlobal, blockPrivate);

        Assert.Equal(expected, policy.Refusal(new IPEndPoint(IPAddress.Parse(client), 50_000)));
    }

    [Theory]
    [InlineData(true, true, "serves only loopback clients", "other machines are refused (--block-global, --block-private)")]
    [InlineData(true, false, "serves loopback and private-network clients", "public internet addresses are refused (--block-global)")]
    [InlineData(false, true, "accepts clients from any public address (--block-global false); only private-network clients are refused (--block-private)", "reach this machine's loopback services")]
    [InlineData(false, false, "accepts clients from any public address (--block-global false):", "reach this machine's loopback services")]
    public void TheStartLogSaysWhoAProxyBeyondLoopbackServes_AsTheTwoOptionsTogetherDecide(bool blockGlobal, bool blockPrivate, string says, string andSays)
    {
        using var logs = new LogCapture();
        new ClientAddressPolicy(blockGlobal, blockPrivate).LogExposure(logs.CreateLogger("start"), "0.0.0.0");

        var (_, level, message) = Assert.Single(logs.Entries);
        Assert.Contains(says, message, StringComparison.Ordinal);
        Assert.Contains(andSays, message, StringComparison.Ordinal);
        Assert.Equal(blockGlobal ? LogLevel.Information : LogLevel.Warning, level);

        // What the sentence promises is what the policy does with a LAN client and a public one.
        Assert.Equal(blockPrivate, policyRefuses("192.168.1.20"));
        Assert.Equal(blockGlobal, policyRefuses("8.8.8.8"));

        bool policyRefuses(string client) =>
            new ClientAddressPolicy(blockGlobal, blockPrivate).Refusal(new IPEndPoint(IPAddress.Parse(client), 50_000)) is not null;
    }

    [Fact]
    public void ALoopbackProxySaysNothingAboutWhoItServes()
    {
        using var logs = new LogCapture();
        new ClientAddressPolicy(blockGlobal: false, blockPrivate: false).LogExposure(logs.CreateLogger("start"), "127.0.0.1");

        Assert.Empty(logs.Entries);
    }

    [RequiresNonLoopbackAddressFact]
    public async Task AClientFromARefusedAddressIsClosedWithoutAWord_WhileLoopbackClientsAreServed()
    {
        var local = NonLoopbackAddress()!;
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { ListenHost = "0.0.0.0", BlockPrivate = true });
        var request = $"GET {upstream.Url("/hello")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nConnection: close\r\n\r\n";

        using var refused = new Socket(local.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        refused.Bind(new IPEndPoint(local, 0));
        await refused.ConnectAsync(new IPEndPoint(local, proxy.ProxyPort));
        await using var refusedStream = new NetworkStream(refused, ownsSocket: false);
        var answer = await ReadAllAsync(refusedStream, request);

        Assert.Equal("", answer);
        Assert.Empty(proxy.Store.Query(_ => true, take: 10));

        using var loopback = new TcpClient();
        await loopback.ConnectAsync(IPAddress.Loopback, proxy.ProxyPort);
        var served = await ReadAllAsync(loopback.GetStream(), request);
        Assert.StartsWith("HTTP/1.1 200", served, StringComparison.Ordinal);
    }

    [RequiresNonLoopbackAddressFact]
    public async Task ByDefaultAClientFromThePrivateNetworkIsServed()
    {
        var local = NonLoopbackAddress()!;
        await using var upstream = await HttpUpstream.StartAsync();
        await using var proxy = await ProxyServer.StartAsync(o => o with { ListenHost = "0.0.0.0" });
        Assert.True(ClientAddressPolicy.IsPrivate(local), $"{local} is expected to be a private address");

        using var client = new Socket(local.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        client.Bind(new IPEndPoint(local, 0));
        await client.ConnectAsync(new IPEndPoint(local, proxy.ProxyPort));
        await using var stream = new NetworkStream(client, ownsSocket: false);
        var answer = await ReadAllAsync(stream, $"GET {upstream.Url("/hello")} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.Port}\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
    }

    /// <summary>An IPv4 address of this machine other than loopback (a LAN or container address), if it has one.</summary>
    internal static IPAddress? NonLoopbackAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(nic => nic.OperationalStatus == OperationalStatus.Up)
            .SelectMany(nic => nic.GetIPProperties().UnicastAddresses)
            .Select(unicast => unicast.Address)
            .FirstOrDefault(address => address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(address));

    private static async Task<string> ReadAllAsync(Stream stream, string request)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
        }
        catch (IOException)
        {
            // Closed before the request was written: nothing will come back either.
        }

        using var buffer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(buffer, timeout.Token);
        }
        catch (IOException)
        {
            // A reset after a refusal reads as the end.
        }

        return Encoding.ASCII.GetString(buffer.ToArray());
    }
}

/// <summary>Skips (with the reason) on a machine with no network but loopback, unless WSWEB_REQUIRE_ALL=1.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresNonLoopbackAddressFactAttribute : FactAttribute
{
    public RequiresNonLoopbackAddressFactAttribute()
    {
        if (!ExternalTools.RequireAll && ClientAddressPolicyTests.NonLoopbackAddress() is null)
        {
            Skip = "Requires an IPv4 address other than loopback on this machine (none is up; set WSWEB_REQUIRE_ALL=1 to make this a failure).";
        }
    }
}
