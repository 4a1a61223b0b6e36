using Microsoft.Extensions.Configuration;
using WsWeb.Hosting;

namespace WsWeb.Tests.Hosting;

public sealed class CommandLineTests
{
    private static (bool Ok, WsWeb.Proxy.ProxyOptions Options, string? Error) Build(string[] args, Dictionary<string, string?>? configuration = null)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(configuration ?? []).Build();
        var root = CommandLine.Create((_, _) => Task.FromResult(0));
        var result = root.Parse(args);
        var ok = CommandLine.TryBuildOptions(config, result, out var options, out var error);
        return (ok, options, error);
    }

    [Fact]
    public void DefaultsAreLoopbackOnMitmproxyPorts()
    {
        var (ok, options, _) = Build([]);

        Assert.True(ok);
        Assert.Equal("127.0.0.1", options.ListenHost);
        Assert.Equal(8080, options.ListenPort);
        Assert.Equal("127.0.0.1", options.WebHost);
        Assert.Equal(8081, options.WebPort);
        Assert.Equal(64L * 1024 * 1024, options.MaxMessageSize);
        Assert.False(options.SslInsecure);
        Assert.True(options.BlockGlobal);
        Assert.False(options.BlockPrivate);
    }

    [Fact]
    public void FlowFilesTakeMitmproxysNames_AndAPlusBeforeTheStreamFileAppends()
    {
        var existing = Path.GetTempFileName();
        try
        {
            var (ok, options, _) = Build(["-r", existing, "-w", "+flows/capture.mitm", "--save-stream-filter", "~websocket"]);

            Assert.True(ok);
            Assert.Equal(existing, options.ReadFile);
            Assert.Equal(Path.GetFullPath("flows/capture.mitm"), options.SaveStreamFile);
            Assert.True(options.SaveStreamAppend);
            Assert.Equal("~websocket", options.SaveStreamFilter);
            Assert.False(Build(["--save-stream-file", "capture.mitm"]).Options.SaveStreamAppend);
        }
        finally
        {
            File.Delete(existing);
        }
    }

    [Fact]
    public void EveryPathOptionTakesATildeForHome_WhereNoShellExpandsIt()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var name = $"wsweb-tilde-{Guid.NewGuid():N}";
        var file = Path.Combine(home, name + ".mitm");
        File.WriteAllBytes(file, []);
        try
        {
            // Environment variables and appsettings.json: the shell never saw these values.
            var (ok, options, error) = Build([], new()
            {
                ["WSWEB_DATA_DIR"] = $"~/{name}-data",
                ["WSWEB_RFILE"] = $"~/{name}.mitm",
                ["WSWEB_UPSTREAM_TRUST_BUNDLE"] = $"~/{name}.mitm",
                ["WSWEB_SAVE_STREAM_FILE"] = $"+~/{name}-out.mitm",
            });

            Assert.True(ok, error);
            Assert.Equal(Path.Combine(home, name + "-data"), options.DataDirectory);
            Assert.Equal(file, options.ReadFile);
            Assert.Equal(file, options.UpstreamTrustBundle);
            Assert.Equal(Path.Combine(home, name + "-out.mitm"), options.SaveStreamFile);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(new[] { "--rfile", "/nonexistent/flows.mitm" }, "--rfile: file '/nonexistent/flows.mitm' does not exist.")]
    [InlineData(new[] { "-w", "/tmp" }, "--save-stream-file: '/tmp' is not a file path: give the file the flows are written to, e.g. flows.mitm (+flows.mitm adds to it).")]
    [InlineData(new[] { "-w", "+" }, "--save-stream-file: '+' is not a file path: give the file the flows are written to, e.g. flows.mitm (+flows.mitm adds to it).")]
    [InlineData(new[] { "--save-stream-filter", "~websocket" }, "--save-stream-filter: it chooses the flows --save-stream-file writes, and no --save-stream-file is given.")]
    [InlineData(new[] { "-w", "x.mitm", "--save-stream-filter", "~websocket & ~zz" }, "--save-stream-filter: unknown operator '~zz' at position 13")]
    public void FlowFileOptionsThatCannotWorkAreRefusedNamingTheOption(string[] args, string expected)
    {
        var (ok, _, error) = Build(args);

        Assert.False(ok);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void RewriteSpecsRepeatAndKeepTheirOrder()
    {
        var (ok, options, _) = Build(["-M", "|https://a.example/|http://127.0.0.1:3000/", "--map-remote", "|~d b|b|c", "-H", "/~q/Origin/https://x", "--block-list", "|~u ads|404"]);

        Assert.True(ok);
        Assert.Equal(["|https://a.example/|http://127.0.0.1:3000/", "|~d b|b|c"], options.MapRemote);
        Assert.Equal(["/~q/Origin/https://x"], options.ModifyHeaders);
        Assert.Equal(["|~u ads|404"], options.BlockList);
    }

    [Theory]
    [InlineData(new[] { "--map-remote", "|a" }, "--map-remote: '|a': it has 1 part after its separator '|', and needs 2 or 3: ")]
    [InlineData(new[] { "-H", "/Bad Name/x" }, "--modify-headers: '/Bad Name/x': 'Bad Name' is not a header name")]
    [InlineData(new[] { "--block-list", "|~u ads|99" }, "--block-list: '|~u ads|99': '99' is not an HTTP status")]
    [InlineData(new[] { "--block-list", "/~u /ads/404" }, "--block-list: '/~u /ads/404': it has 3 parts after its separator '/'")]
    public void RewriteSpecsThatCannotWorkAreRefusedNamingTheOption(string[] args, string expected)
    {
        var (ok, _, error) = Build(args);

        Assert.False(ok);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void MaxConnectionsIsDerivedUnlessGiven_AndMustBeAPositiveCount()
    {
        Assert.Null(Build([]).Options.MaxConnections);
        Assert.Equal(500, Build(["--max-connections", "500"]).Options.MaxConnections);
        Assert.Equal(64, Build([], new() { ["WSWEB_MAX_CONNECTIONS"] = "64" }).Options.MaxConnections);

        var (ok, _, error) = Build(["--max-connections", "0"]);
        Assert.False(ok);
        Assert.Equal("--max-connections: '0' is not a positive whole number.", error);
    }

    [Fact]
    public void BlockingPublicClientsCanBeTurnedOffAndPrivateOnesBlocked()
    {
        var (ok, options, _) = Build(["--block-global", "false", "--block-private"]);
        var (envOk, fromEnvironment, _) = Build([], new() { ["WSWEB_BLOCK_GLOBAL"] = "false" });

        Assert.True(ok);
        Assert.False(options.BlockGlobal);
        Assert.True(options.BlockPrivate);
        Assert.True(envOk);
        Assert.False(fromEnvironment.BlockGlobal);
    }

    [Theory]
    [InlineData(new[] { "--block-global", "maybe" }, "--block-global: 'maybe' is not true or false.")]
    [InlineData(new[] { "--block-global=maybe" }, "--block-global: 'maybe' is not true or false.")]
    [InlineData(new[] { "-k", "maybe" }, "--ssl-insecure: 'maybe' is not true or false.")]
    [InlineData(new[] { "--block-private", "yes" }, "--block-private: 'yes' is not true or false.")]
    public void A_switch_with_a_value_that_is_not_true_or_false_is_refused_naming_it(string[] args, string expected)
    {
        var root = CommandLine.Create((_, _) => Task.FromResult(0));
        Assert.Empty(root.Parse(args).Errors);

        var (ok, _, error) = Build(args);
        Assert.False(ok);
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData(new[] { "-k" }, true)]
    [InlineData(new[] { "--ssl-insecure", "true" }, true)]
    [InlineData(new[] { "--ssl-insecure=false" }, false)]
    [InlineData(new[] { "-k", "--listen-port", "9000" }, true)]
    public void A_switch_alone_is_on_and_takes_true_or_false(string[] args, bool insecure)
    {
        var (ok, options, error) = Build(args);
        Assert.True(ok, error);
        Assert.Equal(insecure, options.SslInsecure);
    }

    [Theory]
    [InlineData("reverse:wss://echo.example", "https", "echo.example", 443)]
    [InlineData("reverse:http://127.0.0.1:9000", "http", "127.0.0.1", 9000)]
    [InlineData("reverse:ws://[::1]:81/", "http", "::1", 81)]
    [InlineData("REVERSE:https://Example.COM:8443", "https", "example.com", 8443)]
    public void Reverse_mode_names_its_server(string mode, string scheme, string host, int port)
    {
        var (ok, options, error) = Build(["--mode", mode]);
        Assert.True(ok, error);
        Assert.Equal(new WsWeb.Proxy.ReverseTarget(scheme, host, port), options.Reverse);

        Assert.Null(Build([]).Options.Reverse);
        Assert.Null(Build(["-m", "regular"]).Options.Reverse);
        Assert.Equal(port, Build([], new() { ["WSWEB_MODE"] = mode }).Options.Reverse?.Port);
    }

    [Fact]
    public void Upstream_mode_names_its_proxy_and_credentials()
    {
        var (ok, options, error) = Build(["--mode", "upstream:http://al%40ice:s3cret@proxy.example:3128"]);
        Assert.True(ok, error);
        Assert.Equal(new WsWeb.Proxy.UpstreamProxy("proxy.example", 3128, "al@ice:s3cret"), options.Upstream);
        Assert.Null(options.Reverse);
        Assert.Equal("http://proxy.example:3128", options.Upstream!.ToString());
        Assert.Null(Build(["--mode", "reverse:ws://a"]).Options.Upstream);
    }

    [Theory]
    [InlineData("socks5", "--mode: 'socks5' is not a mode of WsWeb's: 'regular' (the default), 'reverse:URL'")]
    [InlineData("upstream:https://proxy:3128", "--mode: 'https://proxy:3128' asks for TLS to the upstream proxy")]
    [InlineData("upstream:http://proxy:3128/x", "--mode: 'http://proxy:3128/x' has more than a host and port")]
    [InlineData("upstream:proxy", "--mode: 'proxy' is not a proxy URL")]
    [InlineData("reverse:ws://localhost:8080", "--mode: http://localhost:8080 is WsWeb's own proxy listener; a reverse proxy needs another server.")]
    [InlineData("reverse:http://127.0.0.1:8081", "--mode: http://127.0.0.1:8081 is WsWeb's own web listener; a reverse proxy needs another server.")]
    [InlineData("reverse:", "--mode: '' is not a server URL")]
    [InlineData("reverse:ftp://example.com", "--mode: 'ftp://example.com' is not a server URL")]
    [InlineData("reverse:https://example.com/api", "--mode: 'https://example.com/api' has more than a scheme, host and port")]
    public void A_mode_WsWeb_does_not_have_is_refused_naming_the_option(string mode, string expected)
    {
        var (ok, _, error) = Build(["--mode", mode]);
        Assert.False(ok);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Ignore_hosts_takes_every_pattern_it_is_given_and_refuses_a_bad_one_or_both_lists()
    {
        var (ok, options, error) = Build(["--ignore-hosts", "^pinned\\.example:", "--ignore-hosts", ":8443$"]);
        Assert.True(ok, error);
        Assert.Equal(["^pinned\\.example:", ":8443$"], options.IgnoreHosts);
        Assert.Equal(["bank"], Build([], new() { ["WSWEB_ALLOW_HOSTS"] = "bank" }).Options.AllowHosts);

        Assert.StartsWith("--ignore-hosts: '(' is not a regular expression:", Build(["--ignore-hosts", "("]).Error, StringComparison.Ordinal);
        Assert.Equal("--ignore-hosts: an empty pattern would match every host; give a regular expression.", Build(["--ignore-hosts", ""]).Error);
        Assert.Equal("--allow-hosts: --ignore-hosts and --allow-hosts cannot be used together: give the tunnels to pass through, or those to intercept.",
            Build(["--ignore-hosts", "a", "--allow-hosts", "b"]).Error);
    }

    [Fact]
    public void CommandLineBeatsEnvironmentWhichBeatsAppSettings()
    {
        var configuration = new Dictionary<string, string?>
        {
            ["WsWeb:ListenPort"] = "7000",
            ["WsWeb:WebPort"] = "7001",
            ["WSWEB_WEB_PORT"] = "7002",
            ["WSWEB_MAX_MESSAGE_SIZE"] = "1MiB",
        };

        var (ok, options, _) = Build(["--listen-port", "9000", "-k", "--max-flows", "5"], configuration);

        Assert.True(ok);
        Assert.Equal(9000, options.ListenPort);
        Assert.Equal(7002, options.WebPort);
        Assert.Equal(1024 * 1024, options.MaxMessageSize);
        Assert.True(options.SslInsecure);
        Assert.Equal(5, options.MaxFlows);
    }

    [Theory]
    [InlineData(new[] { "--listen-port", "99999" }, "--listen-port: '99999' is not a port number")]
    [InlineData(new[] { "--listen-host", "example.com" }, "--listen-host: 'example.com' is not an IP address")]
    [InlineData(new[] { "--web-host", "1" }, "--web-host: '1' is not an IPv4 address written out in full")]
    [InlineData(new[] { "--listen-host", "127.1" }, "--listen-host: '127.1' is not an IPv4 address written out in full")]
    [InlineData(new[] { "--listen-host", "192.0.2.77" }, "--listen-host: '192.0.2.77' is not an address of this machine")]
    [InlineData(new[] { "--web-host", "2001:db8::77" }, "--web-host: '2001:db8::77' is not an address of this machine")]
    [InlineData(new[] { "--listen-host", "::ffff:127.0.0.1" }, "--listen-host: '::ffff:127.0.0.1' is an IPv4 address in IPv6 form; write it as 127.0.0.1")]
    [InlineData(new[] { "--listen-host", "fe80::1" }, "--listen-host: 'fe80::1' is link-local and needs its interface")]
    [InlineData(new[] { "--max-message-size", "lots" }, "--max-message-size: 'lots' is not a size")]
    [InlineData(new[] { "--max-flows", "0" }, "--max-flows: '0' is not a positive whole number")]
    [InlineData(new[] { "--web-password", "short" }, "--web-password: the password must have at least 8 characters")]
    [InlineData(new[] { "--upstream-trust-bundle", "/nonexistent/ca.pem" }, "--upstream-trust-bundle: file '/nonexistent/ca.pem' does not exist")]
    [InlineData(new[] { "--listen-port", "9000", "--web-port", "9000" }, "--web-port: 9000 is also the proxy port")]
    [InlineData(new[] { "--listen-host", "localhost", "--web-host", "127.0.0.1", "-p", "9000", "--web-port", "9000" }, "--web-port: 9000 is also the proxy port")]
    [InlineData(new[] { "--listen-host", "::1", "--web-host", "0:0:0:0:0:0:0:1", "-p", "9000", "--web-port", "9000" }, "--web-port: 9000 is also the proxy port")]
    [InlineData(new[] { "--listen-host", "0.0.0.0", "-p", "9000", "--web-port", "9000" }, "--web-port: 9000 is also the proxy port")]
    [InlineData(new[] { "--max-message-size", "17179869184G" }, "--max-message-size: '17179869184G' is larger than the 2 GiB")]
    [InlineData(new[] { "--max-message-size", "18014398509481984K" }, "--max-message-size: '18014398509481984K' is larger than the 2 GiB")]
    public void BadValuesAreRefusedNamingTheOption(string[] args, string expected)
    {
        var (ok, _, error) = Build(args);

        Assert.False(ok);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void BadEnvironmentValueNamesTheVariable()
    {
        var (ok, _, error) = Build([], new Dictionary<string, string?> { ["WSWEB_LISTEN_PORT"] = "http" });

        Assert.False(ok);
        Assert.StartsWith("WSWEB_LISTEN_PORT: 'http'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void WebPasswordComesFromTheEnvironmentAndIsNeverEchoedInAnError()
    {
        var (ok, options, _) = Build([], new Dictionary<string, string?> { ["WSWEB_WEB_PASSWORD"] = "team secret 42" });
        Assert.True(ok);
        Assert.Equal("team secret 42", options.WebPassword);

        var (bad, _, error) = Build(["--web-password", "tiny\u0001"]);
        Assert.False(bad);
        Assert.DoesNotContain("tiny", error, StringComparison.Ordinal);
    }

    [Fact]
    public void GenericHostSwitchesAreSetApartFromWsWebOptions()
    {
        var (host, own) = CommandLine.SplitHostArguments(["--environment=Development", "-p", "9000", "--contentRoot=/tmp", "--ssl-insecure"]);

        Assert.Equal(["--environment=Development", "--contentRoot=/tmp"], host);
        Assert.Equal(["-p", "9000", "--ssl-insecure"], own);
    }

    [Fact]
    public async Task HelpListsEveryOption()
    {
        var output = new StringWriter();
        var root = CommandLine.Create((_, _) => Task.FromResult(0));
        var result = root.Parse(["--help"]);
        result.InvocationConfiguration.Output = output;
        await result.InvokeAsync();

        var help = output.ToString();
        foreach (var option in new[] { "--listen-host", "--listen-port", "--mode", "--web-host", "--web-port", "--data-dir", "--block-global", "--block-private", "--ssl-insecure", "--ignore-hosts", "--allow-hosts", "--upstream-trust-bundle", "--max-message-size", "--max-flows", "--max-messages-per-flow", "--max-connections", "--rfile", "--save-stream-file", "--save-stream-filter", "--map-remote", "--modify-headers", "--block-list" })
        {
            Assert.Contains(option, help, StringComparison.Ordinal);
        }
    }
}
