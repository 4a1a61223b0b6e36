namespace WsWeb.Proxy;

/// <summary>Everything the proxy engine is configured with (command line, appsettings or environment).</summary>
public sealed record ProxyOptions
{
    /// <summary>Address the proxy listens on (mitmproxy's <c>--listen-host</c>).</summary>
    public string ListenHost { get; init; } = "127.0.0.1";

    /// <summary>Port of the proxy (mitmproxy's <c>--listen-port</c>); 0 picks a free one.</summary>
    public int ListenPort { get; init; } = 8080;

    /// <summary>
    /// Reverse-proxy mode (mitmproxy's <c>--mode reverse:URL</c>): requests in origin form go to this server, so a
    /// client that cannot use a proxy connects to WsWeb as if it were the server. Null: a regular proxy only.
    /// </summary>
    public ReverseTarget? Reverse { get; init; }

    /// <summary>
    /// Upstream mode (mitmproxy's <c>--mode upstream:URL</c>): every server connection goes through this proxy as a
    /// CONNECT tunnel. Null: WsWeb connects to servers itself.
    /// </summary>
    public UpstreamProxy? Upstream { get; init; }

    /// <summary>
    /// Regular expressions searched in a CONNECT's <c>host:port</c>: matching tunnels are passed through without
    /// interception or recording (mitmproxy's <c>ignore_hosts</c>), for clients that pin their server's certificate.
    /// </summary>
    public IReadOnlyList<string> IgnoreHosts { get; init; } = [];

    /// <summary>The inverse of <see cref="IgnoreHosts"/> (mitmproxy's <c>allow_hosts</c>): only matching tunnels are intercepted.</summary>
    public IReadOnlyList<string> AllowHosts { get; init; } = [];

    /// <summary>Address of the dashboard, REST API and hub (mitmweb's <c>--web-host</c>).</summary>
    public string WebHost { get; init; } = "127.0.0.1";

    public int WebPort { get; init; } = 8081;

    /// <summary>
    /// Secret for the dashboard, REST API and hub (mitmweb's <c>web_password</c>). When unset and the web listener is
    /// reachable from other machines, a random one is made at each start; on loopback the web listener stays open.
    /// </summary>
    public string? WebPassword { get; init; }

    /// <summary>
    /// Where WsWeb keeps what outlives a run (mitmproxy's <c>confdir</c>): the CA, the web keys (<c>keys/</c>) and the
    /// rules (<c>rules.json</c>); default <c>~/.wsweb</c>.
    /// </summary>
    public string DataDirectory { get; init; } = DefaultDataDirectory();

    /// <summary>
    /// Refuse proxy clients from public internet addresses (mitmproxy's <c>block_global</c>, on by default), so a
    /// listener on 0.0.0.0 is not an open proxy into this machine's loopback services.
    /// </summary>
    public bool BlockGlobal { get; init; } = true;

    /// <summary>Refuse proxy clients from private addresses too (mitmproxy's <c>block_private</c>); loopback always may.</summary>
    public bool BlockPrivate { get; init; }

    /// <summary>Do not verify upstream certificates (mitmproxy's <c>--ssl-insecure</c>).</summary>
    public bool SslInsecure { get; init; }

    /// <summary>PEM file of extra CA certificates trusted for upstream TLS (mitmproxy's <c>--set ssl_verify_upstream_trusted_ca</c>).</summary>
    public string? UpstreamTrustBundle { get; init; }

    /// <summary>Largest WebSocket message accepted; larger ones are closed with 1009.</summary>
    public long MaxMessageSize { get; init; } = 64L * 1024 * 1024;

    /// <summary>How much of each plain HTTP body is kept on the flow (bodies are streamed in full regardless).</summary>
    public int BodyCaptureLimit { get; init; } = 1024 * 1024;

    public int MaxFlows { get; init; } = 10_000;

    public int MaxMessagesPerFlow { get; init; } = 100_000;

    /// <summary>
    /// Client connections the proxy listener keeps open at once (each also has one to its server); past it a
    /// connection is answered 503 and closed. Null: derived from the process's open-file limit (<c>ulimit -n</c>).
    /// </summary>
    public int? MaxConnections { get; init; }

    /// <summary>
    /// URL rewrites in mitmproxy's map_remote syntax, <c>[/flow-filter]/url-regex/replacement</c>: a matching request
    /// (a WebSocket handshake too) goes to the rewritten URL, e.g. <c>|wss://example.com/|ws://127.0.0.1:3000/</c>.
    /// </summary>
    public IReadOnlyList<string> MapRemote { get; init; } = [];

    /// <summary>Headers set (or, with an empty value, removed) in mitmproxy's modify_headers syntax, <c>[/flow-filter]/name/value</c>.</summary>
    public IReadOnlyList<string> ModifyHeaders { get; init; } = [];

    /// <summary>Requests answered by WsWeb instead of forwarded, in mitmproxy's block_list syntax, <c>/flow-filter/status</c> (444: closed without an answer).</summary>
    public IReadOnlyList<string> BlockList { get; init; } = [];

    /// <summary>A flow file (WsWeb JSON, HAR or mitmproxy) whose flows are loaded at start (mitmproxy's <c>-r</c>/<c>rfile</c>).</summary>
    public string? ReadFile { get; init; }

    /// <summary>
    /// A mitmproxy flow file every flow is written to as it ends (mitmproxy's <c>-w</c>/<c>save_stream_file</c>); the
    /// file is made anew at start unless <see cref="SaveStreamAppend"/>.
    /// </summary>
    public string? SaveStreamFile { get; init; }

    /// <summary>Add to <see cref="SaveStreamFile"/> instead of starting it anew (mitmproxy's <c>+</c> before the path).</summary>
    public bool SaveStreamAppend { get; init; }

    /// <summary>Only flows matching this filter expression are written to <see cref="SaveStreamFile"/> (mitmproxy's <c>save_stream_filter</c>).</summary>
    public string? SaveStreamFilter { get; init; }

    /// <summary>Content bytes kept per WebSocket flow before its oldest messages are trimmed.</summary>
    public long MaxBytesPerFlow { get; init; } = 256L * 1024 * 1024;

    /// <summary>Content bytes (WebSocket messages and recorded HTTP bodies) kept across all flows before the oldest finished flows are evicted.</summary>
    public long MaxTotalBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>Whether a <see cref="ListenHost"/> or <see cref="WebHost"/> value binds loopback only ("localhost" or a loopback IP).</summary>
    public static bool IsLoopbackHost(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (System.Net.IPAddress.TryParse(host, out var address) && System.Net.IPAddress.IsLoopback(address));

    public static string DefaultDataDirectory() =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".wsweb");
}
