using System.Net;
using Microsoft.Extensions.Logging;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// Which client addresses may use the proxy: mitmproxy's <c>block_global</c> (on by default) and <c>block_private</c>.
/// A proxy bound to 0.0.0.0 would otherwise relay anyone on the internet into this machine's loopback-only services.
/// </summary>
/// <remarks>
/// "Private" and "global" follow Python's <c>ipaddress</c> as mitmproxy's block addon uses it, in the lists of
/// Python 3.12.4 and later (IANA's special-purpose registries, with the globally reachable exceptions that
/// CVE-2024-4032 added): an IPv4-mapped IPv6 address is judged as its IPv4 address, loopback is always allowed, and
/// 100.64.0.0/10 (carrier-grade NAT) is neither private nor global.
/// </remarks>
internal sealed partial class ClientAddressPolicy(bool blockGlobal, bool blockPrivate)
{
    private static readonly IPNetwork[] PrivateV4 =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.0.0.0/24"),
        IPNetwork.Parse("192.0.0.170/31"), IPNetwork.Parse("192.0.2.0/24"), IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("198.18.0.0/15"), IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("203.0.113.0/24"),
        IPNetwork.Parse("240.0.0.0/4"), IPNetwork.Parse("255.255.255.255/32"),
    ];

    /// <summary>Globally reachable blocks inside the private ones (anycast services).</summary>
    private static readonly IPNetwork[] PrivateExceptionsV4 = [IPNetwork.Parse("192.0.0.9/32"), IPNetwork.Parse("192.0.0.10/32")];

    private static readonly IPNetwork SharedV4 = IPNetwork.Parse("100.64.0.0/10");

    private static readonly IPNetwork[] PrivateV6 =
    [
        IPNetwork.Parse("::1/128"), IPNetwork.Parse("::/128"), IPNetwork.Parse("::ffff:0:0/96"),
        IPNetwork.Parse("64:ff9b:1::/48"), IPNetwork.Parse("100::/64"), IPNetwork.Parse("2001::/23"),
        IPNetwork.Parse("2001:db8::/32"), IPNetwork.Parse("2002::/16"), IPNetwork.Parse("3fff::/20"),
        IPNetwork.Parse("fc00::/7"), IPNetwork.Parse("fe80::/10"),
    ];

    private static readonly IPNetwork[] PrivateExceptionsV6 =
    [
        IPNetwork.Parse("2001:1::1/128"), IPNetwork.Parse("2001:1::2/128"), IPNetwork.Parse("2001:3::/32"),
        IPNetwork.Parse("2001:4:112::/48"), IPNetwork.Parse("2001:20::/28"), IPNetwork.Parse("2001:30::/28"),
    ];

    public ClientAddressPolicy(ProxyOptions options)
        : this(options.BlockGlobal, options.BlockPrivate)
    {
    }

    /// <summary>The option that refuses <paramref name="client"/>, or null when it may use the proxy.</summary>
    public string? Refusal(EndPoint? client)
    {
        if (client is not IPEndPoint { Address: var address })
        {
            return null;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address))
        {
            return null;
        }

        var isPrivate = IsPrivate(address);
        if (blockPrivate && isPrivate)
        {
            return "--block-private";
        }

        return blockGlobal && IsGlobal(address, isPrivate) ? "--block-global" : null;
    }

    /// <summary>Says at start who can reach a proxy that listens beyond loopback.</summary>
    public void LogExposure(ILogger logger, string listenHost)
    {
        if (ProxyOptions.IsLoopbackHost(listenHost))
        {
            return;
        }

        // Each sentence says what the two options together let through, so "--block-private" alone does not read as
        // closed, nor both together as open to other machines.
        switch (blockGlobal, blockPrivate)
        {
            case (true, true):
                LogServed(logger, listenHost, "only loopback clients (and 100.64.0.0/10, which is neither private nor global); other machines are refused (--block-global, --block-private)");
                break;
            case (true, false):
                LogServed(logger, listenHost, "loopback and private-network clients; clients from public internet addresses are refused (--block-global)");
                break;
            default:
                LogOpen(logger, listenHost, blockPrivate ? "; only private-network clients are refused (--block-private)" : "");
                break;
        }
    }

    internal static bool IsPrivate(IPAddress address)
    {
        var v4 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        return (v4 ? PrivateV4 : PrivateV6).Any(network => network.Contains(address))
            && !(v4 ? PrivateExceptionsV4 : PrivateExceptionsV6).Any(network => network.Contains(address));
    }

    internal static bool IsGlobal(IPAddress address, bool isPrivate) =>
        !isPrivate && !(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && SharedV4.Contains(address));

    [LoggerMessage(10, LogLevel.Information, "The proxy on {ListenHost} serves {Who}.")]
    private static partial void LogServed(ILogger logger, string listenHost, string who);

    [LoggerMessage(11, LogLevel.Warning, "The proxy on {ListenHost} accepts clients from any public address (--block-global false){PrivateNetworks}: anyone who reaches it can use it to reach this machine's loopback services.")]
    private static partial void LogOpen(ILogger logger, string listenHost, string privateNetworks);
}
