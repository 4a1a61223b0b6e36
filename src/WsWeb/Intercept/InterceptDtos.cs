using System.ComponentModel;
using WsWeb.Api;

namespace WsWeb.Intercept;

/// <summary>Body of PUT /api/intercept.</summary>
public sealed record InterceptRequest(
    [property: Description("Filter expression selecting the messages to hold, e.g. \"~wq & ~json $.type == \\\"auth\\\"\".")] string? Filter,
    [property: Description("Seconds a held message waits for a decision (0.001 to 86400); omit for no timeout.")] double? TimeoutSeconds,
    [property: Description("What happens on timeout: \"release\" (default) or \"drop\".")] string? TimeoutAction)
{
    // The read-only fields of InterceptState: accepted, so that the settings read with GET can be changed and sent
    // back as they are (unknown fields are refused).

    [Description("Read-only: a PUT switches intercept on (DELETE switches it off), so only true is accepted.")]
    public bool? Enabled { get; init; }

    [Description("Read-only; accepted and ignored.")]
    public int? Held { get; init; }

    [Description("Read-only; accepted and ignored.")]
    public long? FilterTimeouts { get; init; }

    [Description("Read-only; accepted and ignored: send the version as If-Match to refuse a write over someone else's.")]
    public long? Version { get; init; }
}

/// <summary>The intercept in force.</summary>
/// <param name="FilterTimeouts">How often a regex of the filter timed out on a message, which then was not held.</param>
/// <param name="Version">The settings' version: one more on every PUT and DELETE. GET, PUT and DELETE answer it as the ETag "\"{version}\""; send that as If-Match to change the settings only if nobody changed them since.</param>
public sealed record InterceptState(bool Enabled, string? Filter, double? TimeoutSeconds, string TimeoutAction, int Held, long FilterTimeouts, long Version);

/// <summary>A held message with where it belongs.</summary>
public sealed record HeldView(string FlowId, string Url, long Index, double HeldAt, double? TimeoutAt, MessageView Message)
{
    /// <summary>How much of a held message's content (and original content) a preview carries, in bytes.</summary>
    public const int PreviewBytes = 4096;

    /// <summary>
    /// True when <see cref="Message"/> is a preview whose content or original content was cut to the first
    /// <see cref="PreviewBytes"/> bytes; GET /api/flows/{flowId}/messages/{index}/content has the whole.
    /// </summary>
    public bool Truncated { get; init; }

    /// <summary>
    /// Shared by GET /api/intercept/held, the hub's HeldChanged and the dashboard, so all show the same shape.
    /// </summary>
    /// <param name="preview">
    /// Cut contents to <see cref="PreviewBytes"/>. HeldChanged resends the whole list on every change to every
    /// intercept subscriber, so with full contents ten held 4 MB messages released one by one cost 400 MB of
    /// pushes: the push carries previews, and whoever edits a message reads its whole content once, over REST.
    /// </param>
    internal static HeldView From(HeldMessage held, HoldResolutions resolutions, bool preview)
    {
        var message = MessageView.From(held.Message, resolutions.Get(held.Message), preview ? PreviewBytes : int.MaxValue, out var truncated);
        return new HeldView(held.Flow.Id, held.Flow.Request.WebSocketUrl, held.Message.Index, held.HeldAt, held.TimeoutAt, message)
        {
            Truncated = truncated,
        };
    }
}

/// <summary>Optional body of a release: new content replaces the held message's content.</summary>
public sealed record ReleaseRequest(
    [property: Description("New content in the given encoding; omit to release unchanged.")] string? Content,
    [property: Description("\"utf8\" (default), \"base64\" or \"hex\".")] string? Encoding);

/// <summary>Answer of POST /api/intercept/held/release.</summary>
/// <param name="Released">How many held messages this call released; those someone else decided meanwhile are not counted.</param>
public sealed record HeldReleased(int Released);

/// <summary>Answer of POST /api/intercept/held/drop.</summary>
/// <param name="Dropped">How many held messages this call dropped; those someone else decided meanwhile are not counted.</param>
public sealed record HeldDropped(int Dropped);
