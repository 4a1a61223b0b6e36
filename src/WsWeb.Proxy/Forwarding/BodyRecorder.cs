using System.Net;
using WsWeb.Core.Flows;

namespace WsWeb.Proxy.Forwarding;

/// <summary>Keeps the first bytes of a streamed body for the flow; the body itself is never buffered whole.</summary>
internal sealed class BodyRecorder(int limit)
{
    private readonly MemoryStream _kept = new();

    public long Length { get; private set; }

    public bool Truncated => Length > _kept.Length;

    /// <summary>The body was read to its end (the source said so), not just as far as a failure or an early answer let it.</summary>
    public bool Complete { get; set; }

    public void Append(ReadOnlySpan<byte> chunk)
    {
        Length += chunk.Length;
        var room = limit - (int)_kept.Length;
        if (room > 0)
        {
            _kept.Write(chunk[..Math.Min(room, chunk.Length)]);
        }
    }

    // An empty body is recorded as empty, not as missing: mitmproxy replays only flows whose content is known.
    public void ApplyTo(HttpRequestData request)
    {
        request.Content = _kept.ToArray();
        request.ContentLength = Length;
        request.ContentTruncated = Truncated;
    }

    public void ApplyTo(HttpResponseData response)
    {
        response.Content = _kept.ToArray();
        response.ContentLength = Length;
        response.ContentTruncated = Truncated;
    }
}

/// <summary>Streams the client's request body upstream while recording its start.</summary>
internal sealed class RecordingStreamContent(Stream body, BodyRecorder recorder) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        ProxyRequestHandler.CopyAsync(body, stream, recorder, cancellationToken, sourceIsClient: true);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
