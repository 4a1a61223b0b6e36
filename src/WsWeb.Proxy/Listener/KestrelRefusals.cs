using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using WsWeb.Core.Flows;

namespace WsWeb.Proxy.Listener;

/// <summary>A request Kestrel refused before the application saw it: its status and Kestrel's reason.</summary>
internal sealed record RefusedRequest(int StatusCode, string Reason);

/// <summary>
/// Gives the requests Kestrel refuses on the proxy listener (a garbage request line, an <c>ftp://</c> target, a
/// duplicate Content-Length, headers too large…) a plain-text body saying why, and records each as an errored flow.
/// Kestrel answers them itself with an empty 400/414/431 and closes the connection; its reason otherwise shows only
/// in its debug log.
/// </summary>
/// <remarks>
/// Kestrel raises the documented DiagnosticSource event <c>Microsoft.AspNetCore.Server.Kestrel.BadRequest</c> when it
/// refuses a request (HttpProtocol.SetBadRequestState), synchronously, before it writes its reply, with the request's
/// features, <see cref="IBadRequestExceptionFeature"/> among them. When no response has started, all Kestrel writes
/// to the connection afterwards is that reply (it also ends keep-alive), so <see cref="RefusalOutput"/> writes ours in
/// its place. Nothing is matched in Kestrel's bytes.
/// </remarks>
internal sealed partial class KestrelRefusals(FlowStore store, TimeProvider time, ILogger<KestrelRefusals> logger) : IObserver<KeyValuePair<string, object?>>
{
    public const string EventName = "Microsoft.AspNetCore.Server.Kestrel.BadRequest";

    public static bool IsEnabled(string name) => name == EventName;

    public void OnNext(KeyValuePair<string, object?> value)
    {
        if (value.Key != EventName || value.Value is not IFeatureCollection features || features.Get<ProxyConnectionFeature>() is not { } connection)
        {
            return;
        }

        var error = features.Get<IBadRequestExceptionFeature>()?.Error;
        var status = error is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest;
        var reason = string.IsNullOrEmpty(error?.Message) ? ReasonPhrases.GetReasonPhrase(status) : error.Message;
        if (reason.EndsWith(": ''", StringComparison.Ordinal))
        {
            // Kestrel quotes the offending bytes only when its own log level would show them: say what to send instead,
            // when what was wrong is the request line ("Invalid request header", "Invalid Host header" are not).
            reason = reason[..^4];
            if (!reason.Contains("header", StringComparison.OrdinalIgnoreCase))
            {
                reason += " (a proxy request line looks like 'GET http://example.com/path HTTP/1.1', "
                    + "with an http, https, ws or wss URL, or 'CONNECT example.com:443 HTTP/1.1')";
            }
        }
        var request = features.Get<IHttpRequestFeature>();
        LogRefused(features.Get<IHttpConnectionFeature>()?.ConnectionId ?? "?", status, reason);
        if (!connection.ApplicationSawRequest || connection.Heads?.ReadingHead != false)
        {
            // Only a refused head is a request of its own. Kestrel reports a malformed body of a request the application
            // is handling (or that Kestrel drains after it) the same way: that request's flow records the failure.
            Record(connection, request, status, reason);
        }
        if (features.Get<IHttpResponseFeature>()?.HasStarted == false)
        {
            connection.Refused = new RefusedRequest(status, reason);
        }
    }

    public void OnError(Exception error)
    {
    }

    public void OnCompleted()
    {
    }

    private void Record(ProxyConnectionFeature connection, IHttpRequestFeature? request, int status, string reason)
    {
        // Kestrel may have parsed the request line before it gave up on the headers; otherwise these stay empty.
        connection.RecordRefusal(store, time, new HttpRequestData
        {
            Method = request?.Method ?? "",
            Scheme = connection.IsTls ? "https" : "http",
            Host = connection.TunnelHost ?? "",
            Port = connection.TunnelPort,
            Path = request?.RawTarget ?? "",
        }, $"Malformed request ({status}): {reason}");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {ConnectionId}: refused a malformed request with {StatusCode}: {Reason}")]
    private partial void LogRefused(string connectionId, int statusCode, string reason);
}

/// <summary>
/// The output Kestrel writes a proxy connection's responses through. Once <see cref="KestrelRefusals"/> has marked the
/// current request refused, Kestrel's own (empty) reply is dropped and one with a body saying why goes out instead.
/// Until then every call goes straight to <c>inner</c>.
/// </summary>
internal sealed class RefusalOutput(PipeWriter inner, ProxyConnectionFeature connection) : PipeWriter
{
    private ArrayBufferWriter<byte>? _dropped;
    private bool _dropping;
    private bool _replied;

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    public override void Advance(int bytes)
    {
        if (_dropping)
        {
            _dropped!.Advance(bytes);
        }
        else
        {
            inner.Advance(bytes);
        }
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => Target().GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => Target().GetSpan(sizeHint);

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (connection.Refused is { } refused && !_replied)
        {
            Reply(refused);
        }

        return inner.FlushAsync(cancellationToken);
    }

    public override void Complete(Exception? exception = null)
    {
        if (connection.Refused is { } refused && !_replied)
        {
            Reply(refused);
        }

        inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        if (connection.Refused is { } refused && !_replied)
        {
            Reply(refused);
        }

        return inner.CompleteAsync(exception);
    }

    /// <summary>Where the next write goes, decided when Kestrel asks for memory so its Advance goes to the same place.</summary>
    private IBufferWriter<byte> Target()
    {
        _dropping = connection.Refused is not null;
        if (!_dropping)
        {
            return inner;
        }

        _dropped ??= new ArrayBufferWriter<byte>();
        _dropped.ResetWrittenCount();
        return _dropped;
    }

    private void Reply(RefusedRequest refused)
    {
        _replied = true;
        var body = Encoding.UTF8.GetBytes($"WsWeb could not read this request: {refused.Reason}\n");
        var head = $"HTTP/1.1 {refused.StatusCode} {ReasonPhrases.GetReasonPhrase(refused.StatusCode)}\r\n"
            + $"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        inner.Write(Encoding.ASCII.GetBytes(head));
        inner.Write(body);
    }
}
