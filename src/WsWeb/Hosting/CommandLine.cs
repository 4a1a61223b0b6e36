using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using WsWeb.Proxy;

namespace WsWeb.Hosting;

/// <summary>
/// Command-line options with mitmproxy's names. Every option can also be set in appsettings.json
/// (section "WsWeb") or the environment (<c>WSWEB_LISTEN_PORT=9090</c>, or <c>WsWeb__ListenPort</c>);
/// the command line wins.
/// </summary>
internal static class CommandLine
{
    private static readonly Option<string> ListenHost = new("--listen-host") { Description = "Address the proxy listens on (default 127.0.0.1; use 0.0.0.0 to expose it)." };
    private static readonly Option<string> ListenPort = new("--listen-port", "-p") { Description = "Proxy port (default 8080; 0 picks a free port)." };
    private static readonly Option<string> Mode = new("--mode", "-m") { Description = "regular (default): an HTTP proxy. reverse:URL: a reverse proxy to that server as well, e.g. reverse:wss://example.com: a request sent to WsWeb as to a server (GET /chat) goes there. upstream:URL: reach every server through that HTTP proxy, e.g. upstream:http://user:secret@proxy.example:3128.", HelpName = "regular|reverse:URL|upstream:URL" };
    private static readonly Option<string> WebHost = new("--web-host") { Description = "Address of the dashboard and REST API (default 127.0.0.1)." };
    private static readonly Option<string> WebPort = new("--web-port") { Description = "Dashboard and REST API port (default 8081)." };
    private static readonly Option<string> WebPassword = new("--web-password") { Description = "Secret for the dashboard and REST API (Authorization: Bearer, or the sign-in page). Without it a --web-host other than loopback gets a random one at each start, printed with a sign-in link." };
    private static readonly Option<string> DataDirectory = new("--data-dir", "--confdir") { Description = "Directory for the CA and stored state (default ~/.wsweb)." };
    // Switches take an optional true/false as strings, not Option<bool>: System.CommandLine leaves a value it cannot read
    // as a bool ("--block-global maybe") as a stray argument, and the error then named neither the option nor the fault.
    private static readonly Option<string> BlockGlobal = Switch("--block-global", "Refuse proxy clients from public internet addresses (default true; --block-global false turns it off).");
    private static readonly Option<string> BlockPrivate = Switch("--block-private", "Refuse proxy clients from private (LAN) addresses too; loopback is always allowed.");
    private static readonly Option<string> SslInsecure = Switch("--ssl-insecure", "Do not verify upstream server certificates.", "-k");
    private static readonly Option<string[]> IgnoreHosts = new("--ignore-hosts") { Description = "Regular expression searched in a CONNECT's host:port: matching tunnels pass through untouched (no interception, no flow), e.g. for apps that pin certificates. Repeat it for several.", HelpName = "regex" };
    private static readonly Option<string[]> AllowHosts = new("--allow-hosts") { Description = "The inverse of --ignore-hosts: only tunnels whose host:port matches are intercepted; the others pass through. Repeat it for several.", HelpName = "regex" };
    private static readonly Option<string> UpstreamTrustBundle = new("--upstream-trust-bundle") { Description = "PEM file with extra CA certificates trusted for upstream TLS." };
    private static readonly Option<string> MaxMessageSize = new("--max-message-size") { Description = "Largest WebSocket message, e.g. 64MiB (default); larger ones are closed with 1009." };
    private static readonly Option<string> MaxFlows = new("--max-flows") { Description = "Flows kept in memory before the oldest finished ones are evicted (default 10000)." };
    private static readonly Option<string> MaxConnections = new("--max-connections") { Description = "Client connections the proxy keeps open at once; more are answered 503 and closed (default: from the open-file limit, ulimit -n)." };
    private static readonly Option<string[]> MapRemote = new("--map-remote", "-M") { Description = "Send matching requests (WebSocket handshakes too) to another URL: [/flow-filter]/url-regex/replacement, e.g. \"|https://example\\.com/|http://127.0.0.1:3000/\" sends wss://example.com/… to ws://127.0.0.1:3000/… ($1 for groups): the URL matched is the http(s) form the flow shows. Repeat it for several.", HelpName = "spec" };
    private static readonly Option<string[]> ModifyHeaders = new("--modify-headers", "-H") { Description = "Set a header on matching requests and responses, or remove it with an empty value: [/flow-filter]/name/value, e.g. \"/~q/Origin/https://example.com\". Repeat it for several.", HelpName = "spec" };
    private static readonly Option<string[]> BlockList = new("--block-list") { Description = "Answer matching requests with a status instead of forwarding them: /flow-filter/status, e.g. \"|~d ads.example|404\", or for WebSocket handshakes \"|~hq \\\"(?i)^upgrade: websocket\\\" & ~d example.com|503\"; 444 closes the connection without an answer. Repeat it for several.", HelpName = "spec" };
    private static readonly Option<string> ReadFile = new("--rfile", "-r") { Description = "Load the flows of this file at start: a mitmproxy flow file, or WsWeb's JSON or HAR export.", HelpName = "path" };
    private static readonly Option<string> SaveStreamFile = new("--save-stream-file", "-w") { Description = "Write every flow to this mitmproxy flow file as it ends (mitmproxy opens it; so does --rfile). The file is started anew; put + before the path to add to it instead.", HelpName = "[+]path" };
    private static readonly Option<string> SaveStreamFilter = new("--save-stream-filter") { Description = "Write only the flows that match this filter expression to --save-stream-file, e.g. \"~websocket & ~d example.com\".", HelpName = "filter" };
    private static readonly Option<string> MaxMessagesPerFlow = new("--max-messages-per-flow") { Description = "Messages kept per WebSocket flow before the oldest are trimmed (default 100000)." };

    private static readonly (Option Option, string Key)[] Settings =
    [
        (ListenHost, nameof(ProxyOptions.ListenHost)),
        (ListenPort, nameof(ProxyOptions.ListenPort)),
        (Mode, "Mode"),
        (WebHost, nameof(ProxyOptions.WebHost)),
        (WebPort, nameof(ProxyOptions.WebPort)),
        (WebPassword, nameof(ProxyOptions.WebPassword)),
        (DataDirectory, nameof(ProxyOptions.DataDirectory)),
        (BlockGlobal, nameof(ProxyOptions.BlockGlobal)),
        (BlockPrivate, nameof(ProxyOptions.BlockPrivate)),
        (SslInsecure, nameof(ProxyOptions.SslInsecure)),
        (IgnoreHosts, nameof(ProxyOptions.IgnoreHosts)),
        (AllowHosts, nameof(ProxyOptions.AllowHosts)),
        (UpstreamTrustBundle, nameof(ProxyOptions.UpstreamTrustBundle)),
        (MaxMessageSize, nameof(ProxyOptions.MaxMessageSize)),
        (MaxFlows, nameof(ProxyOptions.MaxFlows)),
        (MaxMessagesPerFlow, nameof(ProxyOptions.MaxMessagesPerFlow)),
        (MaxConnections, nameof(ProxyOptions.MaxConnections)),
        (MapRemote, nameof(ProxyOptions.MapRemote)),
        (ModifyHeaders, nameof(ProxyOptions.ModifyHeaders)),
        (BlockList, nameof(ProxyOptions.BlockList)),
        (ReadFile, nameof(ProxyOptions.ReadFile)),
        (SaveStreamFile, nameof(ProxyOptions.SaveStreamFile)),
        (SaveStreamFilter, nameof(ProxyOptions.SaveStreamFilter)),
    ];

    private static Option<string> Switch(string name, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, Arity = ArgumentArity.ZeroOrOne, HelpName = "true|false" };

    private static bool IsSwitch(Option option) => option == BlockGlobal || option == BlockPrivate || option == SslInsecure;

    private static readonly string[] HostSwitches = ["--environment=", "--contentRoot=", "--applicationName="];

    /// <summary>Separates the generic host's own switches (as test hosts and tooling pass them) from WsWeb's options.</summary>
    public static (string[] HostArgs, string[] OwnArgs) SplitHostArguments(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var isHost = args.Select(a => HostSwitches.Any(s => a.StartsWith(s, StringComparison.OrdinalIgnoreCase))).ToArray();
        return ([.. args.Where((_, i) => isHost[i])], [.. args.Where((_, i) => !isHost[i])]);
    }

    public static RootCommand Create(Func<ProxyOptions, CancellationToken, Task<int>> run)
    {
        var root = new RootCommand("WsWeb: a WebSocket-intercepting proxy with a live dashboard.");
        foreach (var (option, _) in Settings)
        {
            root.Options.Add(option);
        }

        root.TreatUnmatchedTokensAsErrors = true;
        root.SetAction(async (result, cancellationToken) =>
        {
            var configuration = new ConfigurationBuilder()
                .SetBasePath(AppContext.BaseDirectory)
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            if (!TryBuildOptions(configuration, result, out var options, out var error))
            {
                await Console.Error.WriteLineAsync($"error: {error}");
                await Console.Error.WriteLineAsync("Run with --help to see the options.");
                return 2;
            }

            return await run(options, cancellationToken);
        });
        return root;
    }

    /// <summary>Merges defaults, configuration and command line into validated options; errors name the option.</summary>
    public static bool TryBuildOptions(IConfiguration configuration, ParseResult? result, out ProxyOptions options, out string? error)
    {
        var defaults = new ProxyOptions();
        var values = new Dictionary<string, (string Value, string Source)>(StringComparer.Ordinal);
        var section = configuration.GetSection("WsWeb");
        foreach (var (option, key) in Settings)
        {
            var environmentName = "WSWEB_" + option.Name.TrimStart('-').Replace('-', '_').ToUpperInvariant();
            if (section[key] is { } fromSettings)
            {
                values[key] = (fromSettings, $"WsWeb:{key}");
            }

            if (configuration[environmentName] is { } fromEnvironment)
            {
                values[key] = (fromEnvironment, environmentName);
            }

            if (result?.GetResult(option) is { Implicit: false } given)
            {
                // A switch given alone is on; a list option keeps every value it was given, one per line.
                var text = option is Option<string[]> ? string.Join('\n', given.Tokens.Select(static t => t.Value))
                    : given.Tokens.Count > 0 ? given.Tokens[^1].Value
                    : IsSwitch(option) ? "true" : "";
                values[key] = (text, option.Name);
            }
        }

        options = defaults;
        error = null;
        try
        {
            var mode = ModeOf(values, "Mode");
            var (saveStreamFile, saveStreamAppend) = StreamFile(values, nameof(ProxyOptions.SaveStreamFile));
            options = new ProxyOptions
            {
                ListenHost = Host(values, nameof(ProxyOptions.ListenHost), defaults.ListenHost),
                ListenPort = Port(values, nameof(ProxyOptions.ListenPort), defaults.ListenPort),
                Reverse = mode.Reverse,
                Upstream = mode.Upstream,
                WebHost = Host(values, nameof(ProxyOptions.WebHost), defaults.WebHost),
                WebPort = Port(values, nameof(ProxyOptions.WebPort), defaults.WebPort),
                WebPassword = Password(values, nameof(ProxyOptions.WebPassword)),
                DataDirectory = DirectoryPath(values, nameof(ProxyOptions.DataDirectory), defaults.DataDirectory),
                BlockGlobal = Bool(values, nameof(ProxyOptions.BlockGlobal), defaults.BlockGlobal),
                BlockPrivate = Bool(values, nameof(ProxyOptions.BlockPrivate), defaults.BlockPrivate),
                SslInsecure = Bool(values, nameof(ProxyOptions.SslInsecure), defaults.SslInsecure),
                IgnoreHosts = Patterns(values, nameof(ProxyOptions.IgnoreHosts)),
                AllowHosts = Patterns(values, nameof(ProxyOptions.AllowHosts)),
                UpstreamTrustBundle = ExistingFile(values, nameof(ProxyOptions.UpstreamTrustBundle)),
                MaxMessageSize = Size(values, nameof(ProxyOptions.MaxMessageSize), defaults.MaxMessageSize),
                MaxFlows = Count(values, nameof(ProxyOptions.MaxFlows), defaults.MaxFlows),
                MaxMessagesPerFlow = Count(values, nameof(ProxyOptions.MaxMessagesPerFlow), defaults.MaxMessagesPerFlow),
                MaxConnections = values.ContainsKey(nameof(ProxyOptions.MaxConnections)) ? Count(values, nameof(ProxyOptions.MaxConnections), 0) : defaults.MaxConnections,
                MapRemote = Specs(values, nameof(ProxyOptions.MapRemote), WsWeb.Proxy.Rewriting.RewriteSpec.MapRemote),
                ModifyHeaders = Specs(values, nameof(ProxyOptions.ModifyHeaders), WsWeb.Proxy.Rewriting.RewriteSpec.ModifyHeader),
                BlockList = Specs(values, nameof(ProxyOptions.BlockList), WsWeb.Proxy.Rewriting.RewriteSpec.Block),
                ReadFile = ExistingFile(values, nameof(ProxyOptions.ReadFile)),
                SaveStreamFile = saveStreamFile,
                SaveStreamAppend = saveStreamAppend,
                SaveStreamFilter = StreamFilter(values, nameof(ProxyOptions.SaveStreamFilter), saveStreamFile),
            };
            if (options.IgnoreHosts.Count > 0 && options.AllowHosts.Count > 0)
            {
                // As mitmproxy: one says what passes through, the other what does not; both at once would contradict.
                throw new OptionException(values[nameof(ProxyOptions.AllowHosts)].Source, "--ignore-hosts and --allow-hosts cannot be used together: give the tunnels to pass through, or those to intercept.");
            }

            if (options.Reverse is { } reverse
                && ((reverse.Port == options.ListenPort && Overlap(reverse.Host, options.ListenHost)) || (reverse.Port == options.WebPort && Overlap(reverse.Host, options.WebHost))))
            {
                // It would refuse every request (the proxy never forwards to its own listeners): say so at start.
                throw new OptionException(values["Mode"].Source, $"{reverse} is WsWeb's own {(reverse.Port == options.ListenPort ? "proxy" : "web")} listener; a reverse proxy needs another server.");
            }

            if (options.ListenPort != 0 && options.ListenPort == options.WebPort && Overlap(options.ListenHost, options.WebHost))
            {
                throw new OptionException("--web-port", $"{options.WebPort} is also the proxy port (--listen-port); pick two different ports.");
            }

            return true;
        }
        catch (OptionException ex)
        {
            error = ex.Message;
            return false;
        }
    }

    /// <summary>Regular expressions, one per line (the command line's repeats) or one from the environment or appsettings.</summary>
    private static string[] Patterns(Dictionary<string, (string Value, string Source)> values, string key)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return [];
        }

        var patterns = entry.Value.Split('\n');
        foreach (var pattern in patterns)
        {
            if (string.IsNullOrEmpty(pattern))
            {
                throw new OptionException(entry.Source, "an empty pattern would match every host; give a regular expression.");
            }

            if (WsWeb.Proxy.Listener.HostPassthrough.Problem(pattern) is { } problem)
            {
                throw new OptionException(entry.Source, problem);
            }
        }

        return patterns;
    }

    /// <summary>mitmproxy-style specs, one per line (the command line's repeats) or one from the environment or appsettings, each checked by <paramref name="parse"/>.</summary>
    private static string[] Specs<T>(Dictionary<string, (string Value, string Source)> values, string key, Func<string, T> parse)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return [];
        }

        var specs = entry.Value.Split('\n');
        foreach (var spec in specs)
        {
            try
            {
                parse(spec);
            }
            catch (FormatException ex)
            {
                throw new OptionException(entry.Source, $"'{spec}': {ex.Message}");
            }
        }

        return specs;
    }

    /// <summary>mitmproxy's --mode: regular (nothing to set), reverse:URL or upstream:URL.</summary>
    private static (ReverseTarget? Reverse, UpstreamProxy? Upstream) ModeOf(Dictionary<string, (string Value, string Source)> values, string key)
    {
        if (!values.TryGetValue(key, out var entry) || string.Equals(entry.Value, "regular", StringComparison.OrdinalIgnoreCase))
        {
            return (null, null);
        }

        if (entry.Value.StartsWith("reverse:", StringComparison.OrdinalIgnoreCase))
        {
            return ReverseTarget.TryParse(entry.Value["reverse:".Length..], out var target, out var error)
                ? (target, null)
                : throw new OptionException(entry.Source, error);
        }

        if (entry.Value.StartsWith("upstream:", StringComparison.OrdinalIgnoreCase))
        {
            return UpstreamProxy.TryParse(entry.Value["upstream:".Length..], out var proxy, out var error)
                ? (null, proxy)
                : throw new OptionException(entry.Source, error);
        }

        throw new OptionException(entry.Source, $"'{entry.Value}' is not a mode of WsWeb's: 'regular' (the default), 'reverse:URL', e.g. reverse:wss://example.com, "
            + "or 'upstream:URL', e.g. upstream:http://proxy.example:3128. mitmproxy's other modes (transparent, socks5, …) are not supported.");
    }

    private static string Host(Dictionary<string, (string Value, string Source)> values, string key, string fallback)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return fallback;
        }

        if (string.Equals(entry.Value, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return entry.Value;
        }

        if (!IPAddress.TryParse(entry.Value, out var address))
        {
            throw new OptionException(entry.Source, $"'{entry.Value}' is not an IP address or 'localhost'.");
        }

        // IPAddress.TryParse takes "1" as 0.0.0.1 and "127.1" as 127.0.0.1: a typo would bind somewhere unmeant.
        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && entry.Value != address.ToString())
        {
            throw new OptionException(entry.Source, $"'{entry.Value}' is not an IPv4 address written out in full (such as 127.0.0.1).");
        }

        // Both parse, pass as local, and then fail to bind with a bare socket error.
        if (address.IsIPv4MappedToIPv6)
        {
            throw new OptionException(entry.Source, $"'{entry.Value}' is an IPv4 address in IPv6 form; write it as {address.MapToIPv4()}.");
        }

        if (address.IsIPv6LinkLocal && address.ScopeId == 0)
        {
            throw new OptionException(entry.Source, $"'{entry.Value}' is link-local and needs its interface, such as {entry.Value}%eth0.");
        }

        return IsBindable(address)
            ? entry.Value
            : throw new OptionException(entry.Source, $"'{entry.Value}' is not an address of this machine; use 127.0.0.1, 0.0.0.0 (every interface) or one of: {string.Join(", ", LocalAddresses())}.");
    }

    private static bool IsBindable(IPAddress address) =>
        IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)
        || LocalAddresses().Any(local => local.GetAddressBytes().AsSpan().SequenceEqual(address.GetAddressBytes()));

    private static IEnumerable<IPAddress> LocalAddresses() =>
        System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(nic => nic.GetIPProperties().UnicastAddresses)
            .Select(unicast => unicast.Address)
            .Where(local => !IPAddress.IsLoopback(local));

    private static int Port(Dictionary<string, (string Value, string Source)> values, string key, int fallback)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return fallback;
        }

        return int.TryParse(entry.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
            ? port
            : throw new OptionException(entry.Source, $"'{entry.Value}' is not a port number (0-65535).");
    }

    private static string? Password(Dictionary<string, (string Value, string Source)> values, string key)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return null;
        }

        // A short secret on a shared listener is one a neighbour can guess.
        return entry.Value.Length >= 8 && !entry.Value.Any(char.IsControl)
            ? entry.Value
            : throw new OptionException(entry.Source, "the password must have at least 8 characters and no control characters.");
    }

    private static int Count(Dictionary<string, (string Value, string Source)> values, string key, int fallback)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return fallback;
        }

        return int.TryParse(entry.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count >= 1
            ? count
            : throw new OptionException(entry.Source, $"'{entry.Value}' is not a positive whole number.");
    }

    private static bool Bool(Dictionary<string, (string Value, string Source)> values, string key, bool fallback)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return fallback;
        }

        return bool.TryParse(entry.Value, out var flag)
            ? flag
            : throw new OptionException(entry.Source, $"'{entry.Value}' is not true or false.");
    }

    /// <summary>
    /// <c>~/path</c> as the home directory's path. A shell expands it on the command line, but not in appsettings.json or
    /// an environment variable, where every path option takes it alike.
    /// </summary>
    private static string ExpandHome(string path) => path.StartsWith("~/", StringComparison.Ordinal)
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..])
        : path;

    private static string DirectoryPath(Dictionary<string, (string Value, string Source)> values, string key, string fallback)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return fallback;
        }

        var path = ExpandHome(entry.Value);
        return path.Length > 0 && !File.Exists(path)
            ? Path.GetFullPath(path)
            : throw new OptionException(entry.Source, $"'{entry.Value}' is not a usable directory path.");
    }

    /// <summary>mitmproxy's save_stream_file: a path to start anew, or with + before it, one to add to.</summary>
    private static (string? Path, bool Append) StreamFile(Dictionary<string, (string Value, string Source)> values, string key)
    {
        if (!values.TryGetValue(key, out var entry) || entry.Value.Length == 0)
        {
            return (null, false);
        }

        var append = entry.Value.StartsWith('+');
        var path = ExpandHome(append ? entry.Value[1..] : entry.Value);
        if (path.Length == 0 || Directory.Exists(path) || path.EndsWith('/') || path.EndsWith(Path.DirectorySeparatorChar))
        {
            throw new OptionException(entry.Source, $"'{entry.Value}' is not a file path: give the file the flows are written to, e.g. flows.mitm (+flows.mitm adds to it).");
        }

        return (Path.GetFullPath(path), append);
    }

    private static string? StreamFilter(Dictionary<string, (string Value, string Source)> values, string key, string? streamFile)
    {
        if (!values.TryGetValue(key, out var entry) || entry.Value.Length == 0)
        {
            return null;
        }

        if (streamFile is null)
        {
            throw new OptionException(entry.Source, "it chooses the flows --save-stream-file writes, and no --save-stream-file is given.");
        }

        return WsWeb.Core.Filters.FlowFilter.TryParse(entry.Value, out _, out var error)
            ? entry.Value
            : throw new OptionException(entry.Source, error.Message);
    }

    private static string? ExistingFile(Dictionary<string, (string Value, string Source)> values, string key)
    {
        if (!values.TryGetValue(key, out var entry) || entry.Value.Length == 0)
        {
            return null;
        }

        var path = ExpandHome(entry.Value);
        return File.Exists(path)
            ? Path.GetFullPath(path)
            : throw new OptionException(entry.Source, $"file '{entry.Value}' does not exist.");
    }

    /// <summary>Parses sizes such as 1048576, 512KiB, 64MiB, 64MB, 1GiB.</summary>
    private static long Size(Dictionary<string, (string Value, string Source)> values, string key, long fallback)
    {
        if (!values.TryGetValue(key, out var entry))
        {
            return fallback;
        }

        var text = entry.Value.Trim();
        var digits = text.TakeWhile(char.IsAsciiDigit).Count();
        var unit = text[digits..].Trim().ToUpperInvariant();
        long multiplier = unit switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1024,
            "M" or "MB" or "MIB" => 1024 * 1024,
            "G" or "GB" or "GIB" => 1024 * 1024 * 1024,
            _ => 0,
        };
        if (digits == 0 || multiplier == 0 || !long.TryParse(text[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number <= 0)
        {
            throw new OptionException(entry.Source, $"'{entry.Value}' is not a size such as 1048576, 512KiB or 64MiB.");
        }

        return number <= int.MaxValue / multiplier
            ? number * multiplier
            : throw new OptionException(entry.Source, $"'{entry.Value}' is larger than the 2 GiB a message can have.");
    }

    /// <summary>True when listeners on <paramref name="a"/> and <paramref name="b"/> with one port would take the same socket.</summary>
    private static bool Overlap(string a, string b)
    {
        static IPAddress[] Addresses(string host) =>
            string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ? [IPAddress.Loopback, IPAddress.IPv6Loopback]
            : IPAddress.TryParse(host, out var address) ? [address]
            : [];

        var left = Addresses(a);
        var right = Addresses(b);
        return string.Equals(a, b, StringComparison.OrdinalIgnoreCase)
            || left.Any(x => right.Any(y => x.Equals(y) || IsWildcard(x, y) || IsWildcard(y, x)));

        // 0.0.0.0 takes the port on every IPv4 address, :: on every address.
        static bool IsWildcard(IPAddress wildcard, IPAddress other) =>
            wildcard.Equals(IPAddress.IPv6Any) || (wildcard.Equals(IPAddress.Any) && other.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
    }

    private sealed class OptionException(string option, string message) : Exception($"{option}: {message}");
}
