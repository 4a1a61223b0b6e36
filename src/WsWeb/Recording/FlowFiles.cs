using System.Runtime.CompilerServices;
using System.Threading.Channels;
using WsWeb.Core;
using WsWeb.Api;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;
using WsWeb.Proxy;

namespace WsWeb.Recording;

/// <summary>A flow file named on the command line cannot be read or written; the message names the option.</summary>
internal sealed class FlowFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// mitmproxy's <c>-r</c> and <c>-w</c>: loads a flow file's flows at start, and writes every flow to a mitmproxy flow
/// file as it ends, so a session can be opened in mitmproxy (or in WsWeb again, with <c>-r</c>) after the process is gone.
/// </summary>
/// <remarks>
/// A mitmproxy flow file is a run of tnetstrings, one per flow, so each flow is appended on its own and a file cut
/// short by a crash still opens up to its last whole flow. A flow's state is taken on the thread that ends it (the
/// same snapshot an export takes, so its messages' bytes stay as they were), and written by one background loop: the
/// disk never holds up a relay. Flows are written as they end, as mitmproxy does; those still live at shutdown are
/// written last, as they are then.
/// </remarks>
internal sealed partial class FlowFiles(FlowStore store, ProxyOptions options, ILogger<FlowFiles> logger) : IHostedService
{
    /// <summary>Flows taken but not yet written; past it the disk is too slow and later flows are left out (and counted).</summary>
    internal const int QueueLimit = 10_000;

    private readonly Channel<TnetDict> _queue = Channel.CreateBounded<TnetDict>(
        new BoundedChannelOptions(QueueLimit) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    /// <summary>Flows taken for the file, so one that ends twice (killed as it closes) is written once. Weak: flows come and go.</summary>
    private readonly ConditionalWeakTable<HttpFlow, object> _taken = [];
    private static readonly object Taken = new();

    private readonly FlowFilter? _filter = options.SaveStreamFilter is { } expression && FlowFilter.TryParse(expression, out var parsed, out _) ? parsed : null;

    private FileStream? _file;
    private IDisposable? _subscription;
    private Task _writing = Task.CompletedTask;
    private long _leftOut;
    private volatile string? _problem;

    /// <summary>Why flows are no longer being written (the disk failed), or null.</summary>
    public string? Problem => _problem;

    /// <summary>The file flows are written to as they end (--save-stream-file), or null.</summary>
    public string? StreamFile => _file is null ? null : options.SaveStreamFile;

    /// <summary>Flows left out of the file because the disk fell more than <see cref="QueueLimit"/> flows behind.</summary>
    public long LeftOut => Interlocked.Read(ref _leftOut);

    /// <summary>Loads <see cref="ProxyOptions.ReadFile"/> into the store; called while the host is built, before any flow is captured.</summary>
    /// <exception cref="FlowFileException">The file cannot be read, or is not a flow file.</exception>
    public void LoadReadFile()
    {
        if (options.ReadFile is not { } path)
        {
            return;
        }

        ImportReport report;
        try
        {
            // A session file written with -w holds as much as the store kept, and more: as large as one array may be.
            report = FlowImport.Into(store, File.ReadAllBytes(path), given: null, maxInputBytes: Array.MaxLength);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FlowFormatException)
        {
            throw new FlowFileException($"--rfile: {path} cannot be loaded: {ex.Message}", ex);
        }

        LogLoaded(logger, report.Flows, report.Messages, path, report.Format);
        foreach (var warning in report.Warnings)
        {
            LogLoadWarning(logger, path, warning);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.SaveStreamFile is not { } path)
        {
            return Task.CompletedTask;
        }

        try
        {
            if (Path.GetDirectoryName(path) is { Length: > 0 } directory && !Directory.Exists(directory))
            {
                // As mitmproxy: missing directories are made; here owner-only, as the file is.
                OwnerOnly.CreateDirectory(directory);
            }

            // Flows carry cookies, tokens and message contents: readable by their owner only, as the CA key is.
            var open = OwnerOnly.Restrict(new FileStreamOptions
            {
                Mode = options.SaveStreamAppend ? FileMode.Append : FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.Read,
                Options = FileOptions.Asynchronous,
            });
            _file = new FileStream(path, open);
            if (!options.SaveStreamAppend)
            {
                // A file started anew over an older one keeps that one's mode otherwise; one added to is the user's own.
                OwnerOnly.Restrict(path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FlowFileException($"--save-stream-file: {path} cannot be written: {ex.Message}", ex);
        }

        // The flows already in the store are those --rfile loaded: written first, as mitmproxy saves loaded flows, so
        // "-r session.mitm -w session.mitm" carries a session on instead of emptying its file.
        foreach (var flow in store.Snapshot().Where(static f => !f.IsLive))
        {
            Take(flow);
        }

        _subscription = store.Subscribe(OnEvent);
        _writing = Task.Run(WriteAsync, CancellationToken.None);
        LogWriting(logger, path, options.SaveStreamFilter ?? "every flow");
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_file is null)
        {
            return;
        }

        // The web host has stopped by now (it started last), so the relays it ran have ended their flows already.
        _subscription?.Dispose();
        foreach (var flow in store.Snapshot().Where(static f => f.IsLive))
        {
            Take(flow);
        }

        _queue.Writer.TryComplete();
        await _writing.WaitAsync(cancellationToken);
        if (LeftOut > 0)
        {
            LogLeftOut(logger, LeftOut, options.SaveStreamFile!);
        }
    }

    private void OnEvent(FlowEvent flowEvent)
    {
        if (flowEvent.Kind == FlowEventKind.FlowEnded)
        {
            Take(flowEvent.Flow);
        }
    }

    private void Take(HttpFlow flow)
    {
        if ((_filter is not null && !_filter.Matches(flow, FilterMode.Relay)) || !_taken.TryAdd(flow, Taken))
        {
            return;
        }

        if (_problem is not null || !_queue.Writer.TryWrite(MitmproxyFlowFormat.ToState(flow)))
        {
            Interlocked.Increment(ref _leftOut);
        }
    }

    private async Task WriteAsync()
    {
        var file = _file!;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        await foreach (var state in _queue.Reader.ReadAllAsync())
        {
            if (_problem is not null)
            {
                continue;
            }

            try
            {
                buffer.ResetWrittenCount();
                Tnetstring.Write(state, buffer);
                await file.WriteAsync(buffer.WrittenMemory);
                if (_queue.Reader.Count == 0)
                {
                    // A whole flow on disk before waiting for the next, so a crash loses at most what was still queued.
                    await file.FlushAsync();
                }
            }
            catch (IOException ex)
            {
                _problem = $"Flows are no longer written to {file.Name}: {ex.Message}";
                LogWriteFailed(logger, file.Name, ex.Message);
            }
        }

        try
        {
            await file.DisposeAsync();
        }
        catch (IOException ex)
        {
            LogWriteFailed(logger, file.Name, ex.Message);
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Loaded {Flows} flows ({Messages} WebSocket messages) from {Path} ({Format}).")]
    private static partial void LogLoaded(ILogger logger, int flows, int messages, string path, string format);

    [LoggerMessage(2, LogLevel.Warning, "--rfile {Path}: {Warning}")]
    private static partial void LogLoadWarning(ILogger logger, string path, string warning);

    [LoggerMessage(3, LogLevel.Information, "Writing flows to {Path} as they end ({Filter}).")]
    private static partial void LogWriting(ILogger logger, string path, string filter);

    [LoggerMessage(4, LogLevel.Warning, "--save-stream-file {Path}: {Reason}; flows are no longer written to it.")]
    private static partial void LogWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(5, LogLevel.Warning, "--save-stream-file {Path}: {Count} flows were left out because the disk fell more than 10,000 flows behind.")]
    private static partial void LogLeftOut(ILogger logger, long count, string path);
}
