using System.Collections.Immutable;
using System.Net;
using System.Net.NetworkInformation;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// The addresses this process listens on, so the proxy can refuse to forward to itself: a request
/// through the proxy to its own dashboard would bypass the loopback-only binding, and a request to
/// its own proxy port would loop forever.
/// </summary>
internal sealed class OwnEndpoints
{
    private ImmutableArray<IPEndPoint> _endpoints = [];
    private readonly Lazy<HashSet<IPAddress>> _localAddresses = new(LoadLocalAddresses);

    private ImmutableArray<IPEndPoint> _proxy = [];
    private ImmutableArray<IPEndPoint> _web = [];

    public void Set(IEnumerable<IPEndPoint> endpoints) => _endpoints = [.. endpoints];

    public IReadOnlyList<IPEndPoint> Endpoints => _endpoints;

    /// <summary>Where the proxy listener bound, as its transport reported it (port 0 picks a free port).</summary>
    public IReadOnlyList<IPEndPoint> Proxy => _proxy;

    /// <summary>Where the dashboard and REST API listener bound.</summary>
    public IReadOnlyList<IPEndPoint> Web => _web;

    /// <summary>Told by a transport once it has bound one of the two listeners.</summary>
    public void Bound(IPEndPoint endpoint, bool proxy)
    {
        if (proxy)
        {
            ImmutableInterlocked.Update(ref _proxy, static (list, e) => list.Add(e), endpoint);
        }
        else
        {
            ImmutableInterlocked.Update(ref _web, static (list, e) => list.Add(e), endpoint);
        }
    }

    /// <summary>True if connecting to <paramref name="address"/>:<paramref name="port"/> would reach one of our listeners.</summary>
    public bool IsOwn(IPAddress address, int port)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (var endpoint in _endpoints)
        {
            if (endpoint.Port != port)
            {
                continue;
            }

            var bound = endpoint.Address;
            if (bound.Equals(address))
            {
                return true;
            }

            // A wildcard or loopback listener is reached through any local address, and through the
            // unspecified one: connecting to 0.0.0.0 or :: reaches this host.
            if ((IsUnspecified(bound) || IPAddress.IsLoopback(bound)) && (IPAddress.IsLoopback(address) || IsUnspecified(address) || _localAddresses.Value.Contains(address)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Checks a host name without DNS: literal addresses and "localhost".</summary>
    public bool IsOwn(string host, int port)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            return IsOwn(IPAddress.Loopback, port);
        }

        return IPAddress.TryParse(host, out var address) && IsOwn(address, port);
    }

    private static bool IsUnspecified(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    private static HashSet<IPAddress> LoadLocalAddresses()
    {
        var set = new HashSet<IPAddress>();
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    set.Add(unicast.Address);
                }
            }
        }
        catch (NetworkInformationException)
        {
            // Without interface data only loopback and exact matches are recognised.
        }

        return set;
    }
}
