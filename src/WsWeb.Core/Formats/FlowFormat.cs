using WsWeb.Core.Flows;

namespace WsWeb.Core.Formats;

/// <summary>The file formats flows can be exported to and imported from.</summary>
public enum FlowFormat
{
    /// <summary>Our own JSON schema (docs/flow-json-schema.md): lossless.</summary>
    Json,

    /// <summary>HAR 1.2 with Chrome's WebSocket extension (<c>_webSocketMessages</c>) and our <c>_wsweb</c> extras.</summary>
    Har,

    /// <summary>mitmproxy flow file (tnetstring, format version 17 written, 17–21 read).</summary>
    Mitmproxy,
}

/// <summary>Bounds for importing untrusted files.</summary>
public sealed record FlowImportOptions
{
    public static readonly FlowImportOptions Default = new();

    /// <summary>Largest input accepted, in bytes; the input is read into memory up to this size.</summary>
    public long MaxInputBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>
    /// Largest single tnetstring payload accepted in mitmproxy files: one flow. A flow WsWeb keeps may hold 256 MiB of
    /// messages plus two 1 MiB bodies, and each message costs its framing in the file, so WsWeb's own largest flow
    /// (as --save-stream-file writes it) fits with room to spare.
    /// </summary>
    public long MaxTnetstringLength { get; init; } = 320L * 1024 * 1024;

    /// <summary>Deepest nesting accepted in tnetstrings and JSON.</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Retention bound of each imported flow's message list (see <see cref="Flows.FlowStoreOptions.MaxMessagesPerFlow"/>).</summary>
    public int MaxMessagesPerFlow { get; init; } = int.MaxValue;

    /// <summary>Content bytes kept per imported flow before its oldest messages are trimmed (see <see cref="Flows.FlowStoreOptions.MaxBytesPerFlow"/>).</summary>
    public long MaxBytesPerFlow { get; init; } = long.MaxValue;
}

/// <summary>What an import produced.</summary>
/// <param name="Flows">The flows read, in file order; all have <see cref="HttpFlow.IsImported"/> set and are not live.</param>
/// <param name="MessageCount">WebSocket messages across all flows.</param>
/// <param name="Skipped">Entries that are not HTTP flows (mitmproxy tcp/udp/dns flows) and were left out.</param>
/// <param name="Format">The format read (detected or given).</param>
/// <param name="Warnings">What was left out or approximated, one line each.</param>
public sealed record FlowImportResult(
    IReadOnlyList<HttpFlow> Flows,
    int MessageCount,
    int Skipped,
    FlowFormat Format,
    IReadOnlyList<string> Warnings)
{
    /// <summary>
    /// The flows whose oldest messages the import trimmed under <see cref="FlowImportOptions.MaxMessagesPerFlow"/> or
    /// <see cref="FlowImportOptions.MaxBytesPerFlow"/>, in file order. Left out of <see cref="Warnings"/>: the caller
    /// knows what its bounds are called.
    /// </summary>
    public IReadOnlyList<TrimmedOnImport> Trimmed { get; init; } = [];
}

/// <summary>A flow whose oldest WebSocket messages an import trimmed, as a capture would have, to keep it within the per-flow bounds.</summary>
/// <param name="Trimmed">The file's messages left out, its oldest.</param>
/// <param name="InFile">The messages the file held for the flow (not counting any it said were trimmed before it was written).</param>
/// <param name="ByMaxMessages">The flow held more than <see cref="FlowImportOptions.MaxMessagesPerFlow"/> messages.</param>
/// <param name="ByMaxBytes">The flow held more than <see cref="FlowImportOptions.MaxBytesPerFlow"/> bytes of content.</param>
public sealed record TrimmedOnImport(HttpFlow Flow, long Trimmed, long InFile, bool ByMaxMessages, bool ByMaxBytes);
