namespace WsWeb.Core.Flows;

/// <summary>The response of a flow (mitmproxy's <c>http.Response</c>).</summary>
public sealed class HttpResponseData
{
    public required int StatusCode { get; set; }

    public string Reason { get; set; } = "";

    public string HttpVersion { get; set; } = "HTTP/1.1";

    public HeaderList Headers { get; init; } = [];

    public byte[]? Content { get; set; }

    public long ContentLength { get; set; }

    public bool ContentTruncated { get; set; }

    public double TimestampStart { get; set; }

    public double? TimestampEnd { get; set; }
}
