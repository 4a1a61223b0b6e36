using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace WsWeb.Tests.Infrastructure;

/// <summary>
/// The real executable (`dotnet WsWeb.dll`) in a process of its own, with its console output kept: for what only a
/// whole process shows (its limits, what it prints at start, that it survives).
/// </summary>
internal sealed partial class WsWebProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly Task _readers;
    private int _disposed;

    private WsWebProcess(Process process)
    {
        _process = process;
        _readers = Task.WhenAll(ReadAsync(process.StandardOutput), ReadAsync(process.StandardError));
    }

    public int ProxyPort { get; private set; }

    public int WebPort { get; private set; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything written to stdout and stderr so far, one entry per line.</summary>
    public IReadOnlyList<string> Lines => [.. _lines];

    public string Output => string.Join('\n', _lines);

    /// <summary>Starts WsWeb with <paramref name="args"/>, through <paramref name="wrapper"/> (a shell line that ends in <c>exec "$@"</c>) when given.</summary>
    public static async Task<WsWebProcess> StartAsync(IEnumerable<string> args, string? wrapper = null)
    {
        var start = new ProcessStartInfo(wrapper is null ? "dotnet" : "/bin/sh") { RedirectStandardError = true, RedirectStandardOutput = true };
        if (wrapper is not null)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(wrapper);
            start.ArgumentList.Add("wsweb");
            start.ArgumentList.Add("dotnet");
        }

        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = new WsWebProcess(Process.Start(start)!);
        try
        {
            // Kestrel says where it listens in the order the listeners were bound: the proxy first.
            await process.WaitForLineAsync(line => ListeningOn().Matches(process.Output).Count >= 2, "both listeners bound", TimeSpan.FromSeconds(60));
            var ports = ListeningOn().Matches(process.Output).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            process.ProxyPort = ports[0];
            process.WebPort = ports[1];
            return process;
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until the output has a line matching <paramref name="match"/>; fails with the output so far.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (_lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }

            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                await Task.Delay(200);
                throw new TimeoutException($"WsWeb never printed {what} ({(_process.HasExited ? $"it exited with {_process.ExitCode}" : "timed out")}). Its output:\n{Output}");
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        await _readers;
        _process.Dispose();
    }

    private async Task ReadAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            _lines.Enqueue(line);
        }
    }

    [GeneratedRegex(@"Now listening on: http://[^\s]+:(\d+)")]
    private static partial Regex ListeningOn();
}
