using System.Runtime.InteropServices;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// How many connections each listener keeps open at once. Every connection is a file descriptor, a proxied one two
/// (the client's and the server's), and a process that runs out of them fails in ways nobody chose: accepts fail,
/// the runtime cannot open what it needs and aborts ("Out of memory."). So the limits are set below the process's
/// open-file limit (<c>ulimit -n</c>), with room for what the runtime itself holds open, and a connection over its
/// listener's limit is answered 503 and closed at once.
/// </summary>
/// <param name="Proxy">Client connections on the proxy listener (CONNECT tunnels and WebSockets included); null for no limit.</param>
/// <param name="Web">Connections on the web listener (dashboard, API, hub); null for no limit.</param>
/// <param name="OpenFileLimit">The process's open-file limit the defaults came from, when known.</param>
/// <param name="ProxyFromOption">True when <see cref="Proxy"/> was given (<c>--max-connections</c>) rather than derived.</param>
internal sealed record ConnectionLimits(int? Proxy, int? Web, long? OpenFileLimit, bool ProxyFromOption)
{
    /// <summary>
    /// Descriptors kept for the process itself. A started WsWeb holds about 260 (the runtime maps each assembly it
    /// loads, and keeps a few pipes, an epoll and the log), a little more once every page has been served; the rest
    /// covers what comes and goes (DNS lookups, certificate files, exports).
    /// </summary>
    public const int Reserved = 384;

    /// <summary>No listener is limited below this, however low the open-file limit.</summary>
    public const int Minimum = 16;

    /// <summary>The limits for <paramref name="options"/> in a process whose open-file limit is <paramref name="openFileLimit"/>.</summary>
    public static ConnectionLimits For(ProxyOptions options, long? openFileLimit)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (openFileLimit is not { } limit)
        {
            // No such limit here (Windows), or it could not be read: only what the user asked for.
            return new ConnectionLimits(options.MaxConnections, null, null, options.MaxConnections is not null);
        }

        // A third of what is left to proxied connections (two descriptors each), a sixth to the web listener, and a
        // sixth spare: pooled server connections outlive their clients for a while, a connect briefly adds a DNS socket,
        // and each listener refuses a quarter of its limit at once (ConnectionLimiter.RefusalRoom), an eighth in all.
        var usable = Math.Max(0, limit - Reserved);
        var proxy = Clamp(usable / 3);
        var web = Clamp(usable / 6);
        return new ConnectionLimits(options.MaxConnections ?? proxy, web, limit, options.MaxConnections is not null);
    }

    /// <summary>The connections <see cref="Proxy"/> and <see cref="Web"/> may take in all, in descriptors, against <see cref="OpenFileLimit"/>.</summary>
    public bool FitsOpenFileLimit => OpenFileLimit is not { } limit || Proxy is not { } proxy || (2L * proxy) + (Web ?? 0) + Reserved <= limit;

    private static int Clamp(long value) => (int)Math.Clamp(value, Minimum, int.MaxValue);

    /// <summary>The soft limit on open files (RLIMIT_NOFILE) of this process, or null where there is none to read.</summary>
    /// <remarks>The runtime raises the soft limit to the hard one at start on Linux, so this is what the process really has.</remarks>
    public static long? ReadOpenFileLimit()
    {
        int resource;
        if (OperatingSystem.IsLinux())
        {
            resource = 7;
        }
        else if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
        {
            resource = 8;
        }
        else
        {
            return null;
        }

        try
        {
            if (NativeMethods.getrlimit(resource, out var value) != 0)
            {
                return null;
            }

            // RLIM_INFINITY is all bits set: no limit to keep below.
            return value.Current >= long.MaxValue ? null : (long)value.Current;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    private static class NativeMethods
    {
        [StructLayout(LayoutKind.Sequential)]
        internal struct RLimit
        {
            public ulong Current;
            public ulong Maximum;
        }

        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int getrlimit(int resource, out RLimit limit);
    }
}
