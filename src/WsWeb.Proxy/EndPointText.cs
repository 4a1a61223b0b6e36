using System.Net;

namespace WsWeb.Proxy;

/// <summary>How a socket's address is recorded on a flow (peername, sockname).</summary>
internal static class EndPointText
{
    /// <summary>
    /// <c>host:port</c>, with an IPv4 address as IPv4: a dual-mode socket reports 127.0.0.1 as <c>[::ffff:127.0.0.1]</c>,
    /// which mitmproxy and every filter on the address would see as another host.
    /// </summary>
    public static string? Format(EndPoint? endPoint) => endPoint is IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip
        ? new IPEndPoint(ip.Address.MapToIPv4(), ip.Port).ToString()
        : endPoint?.ToString();
}
