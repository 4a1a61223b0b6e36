using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Proxy.Forwarding;

namespace WsWeb.Proxy.Rewriting;

/// <summary>
/// mitmproxy's block_list, map_remote and modify_headers for proxied requests, WebSocket handshakes included: answer a
/// request without forwarding it, send it to another server, set or remove headers. They run in mitmproxy's order
/// (block, then map, then headers), each seeing the flow as the one before left it, and the flow records the result.
/// </summary>
internal sealed class RequestRewrites(ProxyOptions options)
{

    private readonly BlockSpec[] _blocks = [.. options.BlockList.Select(RewriteSpec.Block)];
    private readonly MapRemoteSpec[] _maps = [.. options.MapRemote.Select(RewriteSpec.MapRemote)];
    private readonly ModifyHeaderSpec[] _headers = [.. options.ModifyHeaders.Select(RewriteSpec.ModifyHeader)];

    /// <summary>The status the first matching block-list entry answers with, or null when the request goes on.</summary>
    private int? BlockStatus(HttpFlow flow)
    {
        foreach (var block in _blocks)
        {
            if (block.Filter.Matches(flow, FilterMode.Relay))
            {
                return block.Status;
            }
        }

        return null;
    }

    /// <summary>
    /// All three, as a proxied request and a replay meet them before the flow is shown: a request the block list matches
    /// is not rewritten (<see cref="RewriteOutcome.BlockStatus"/>), and one map_remote cannot send says why
    /// (<see cref="RewriteOutcome.Error"/>); otherwise <paramref name="target"/> is where it now goes.
    /// </summary>
    public RewriteOutcome Rewrite(HttpFlow flow, IHeaderDictionary sent, ref ProxyTarget target)
    {
        if (BlockStatus(flow) is { } status)
        {
            return new RewriteOutcome(status, null);
        }

        try
        {
            target = Apply(flow, sent, target);
            return default;
        }
        catch (RewriteException ex)
        {
            return new RewriteOutcome(null, ex.Message);
        }
    }

    /// <summary>The record of a blocked request's answer: its status and an empty body, as mitmproxy makes one.</summary>
    public static HttpResponseData BlockedAnswer(int status, double now, bool connectionClose) => new()
    {
        StatusCode = status,
        Reason = Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status),
        Headers = connectionClose ? [new("Content-Length", "0"), new("Connection", "close")] : [new("Content-Length", "0")],
        Content = [],
        TimestampStart = now,
        TimestampEnd = now,
    };

    /// <summary>
    /// Applies map_remote and then modify_headers to a request about to be forwarded: the flow's record, the headers
    /// that go out and the target all change together. Returns the target the request now goes to.
    /// </summary>
    /// <exception cref="RewriteException">A rewritten URL is not one a proxy can send a request to.</exception>
    private ProxyTarget Apply(HttpFlow flow, IHeaderDictionary sent, ProxyTarget target)
    {
        if (_maps.Length > 0)
        {
            target = MapRemote(flow, sent, target);
        }

        if (_headers.Length > 0)
        {
            ModifyHeaders(flow, flow.Request.Headers, sent);
        }

        return target;
    }

    /// <summary>modify_headers on a response about to go to the client (its head not yet sent): the record and the response alike.</summary>
    public void ApplyToResponse(HttpFlow flow, IHeaderDictionary sent)
    {
        if (_headers.Length > 0 && flow.Response is { } response)
        {
            ModifyHeaders(flow, response.Headers, sent, response.StatusCode == 101 ? HandshakeHeaders : null);
        }
    }

    /// <summary>
    /// What a 101 keeps whatever --modify-headers says: the relay negotiated them with both peers (permessage-deflate in
    /// Sec-WebSocket-Extensions above all), and a client told otherwise fails the connection on the first frame.
    /// </summary>
    private static readonly HashSet<string> HandshakeHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions",
    };

    private ProxyTarget MapRemote(HttpFlow flow, IHeaderDictionary sent, ProxyTarget target)
    {
        // As mitmproxy, every entry that matches rewrites the URL in turn; the URL is the http(s) form the flow shows.
        var url = flow.Request.Url;
        foreach (var map in _maps)
        {
            if (!map.Filter.Matches(flow, FilterMode.Relay))
            {
                continue;
            }

            try
            {
                url = map.Pattern.Replace(url, map.Replacement);
            }
            catch (RegexMatchTimeoutException)
            {
                throw new RewriteException($"--map-remote '{map.Pattern}' took too long on {url}; the request was not forwarded.");
            }
        }

        if (url == flow.Request.Url)
        {
            return target;
        }

        if (!ProxyTarget.TryFromUrl(url, out var mapped) || mapped.Host.Length == 0)
        {
            throw new RewriteException($"--map-remote turned {flow.Request.Url} into '{url}', which is not an http, https, ws or wss URL; the request was not forwarded.");
        }

        var hadHost = flow.Request.Headers["Host"] is not null;
        flow.Request.Scheme = mapped.Scheme;
        flow.Request.Host = mapped.Host;
        flow.Request.Port = mapped.Port;
        flow.Request.Path = mapped.PathAndQuery;
        flow.ServerConn.Address = $"{mapped.Host}:{mapped.Port}";
        if (hadHost)
        {
            // As mitmproxy's request.url setter: a Host header follows the new server.
            var authority = flow.Request.Authority;
            SetHeader(flow.Request.Headers, "Host", authority);
            sent.Host = authority;
        }

        return mapped;
    }

    private void ModifyHeaders(HttpFlow flow, HeaderList recorded, IHeaderDictionary sent, HashSet<string>? kept = null)
    {
        // As mitmproxy: every filter is asked first, on the flow as it is; then the names are removed; then values are set.
        var matches = new bool[_headers.Length];
        for (var i = 0; i < _headers.Length; i++)
        {
            matches[i] = kept?.Contains(_headers[i].Name) != true && _headers[i].Filter.Matches(flow, FilterMode.Relay);
        }

        for (var i = 0; i < _headers.Length; i++)
        {
            if (matches[i])
            {
                recorded.RemoveAll(h => string.Equals(h.Key, _headers[i].Name, StringComparison.OrdinalIgnoreCase));
                sent.Remove(_headers[i].Name);
            }
        }

        for (var i = 0; i < _headers.Length; i++)
        {
            if (matches[i] && _headers[i].Value.Length > 0)
            {
                recorded.Add(_headers[i].Name, _headers[i].Value);
                sent.Append(_headers[i].Name, _headers[i].Value);
            }
        }
    }

    private static void SetHeader(HeaderList headers, string name, string value)
    {
        var index = headers.FindIndex(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase));
        headers.RemoveAll(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase));
        headers.Insert(index < 0 ? 0 : Math.Min(index, headers.Count), new(name, value));
    }
}

/// <summary>What <see cref="RequestRewrites.Rewrite"/> decided: a block-list status, why map_remote could not send, or neither (go on).</summary>
internal readonly record struct RewriteOutcome(int? BlockStatus, string? Error);

/// <summary>A rewrite made a request that cannot be forwarded; the message says which option and why.</summary>
internal sealed class RewriteException(string message) : Exception(message);
