using System.ComponentModel;

namespace WsWeb.Rules;

/// <summary>What a replace rule changes.</summary>
public sealed record ReplaceSpec(
    [property: Description("A .NET regex over the text of text messages, or (with binary: true) a hex byte sequence searched in binary messages.")] string? Pattern,
    [property: Description("Regex replacement ($1 for groups) or, with binary: true, hex bytes; may be empty.")] string? Replacement,
    [property: Description("false (default): text messages, regex. true: binary messages, hex byte pattern.")] bool? Binary);

/// <summary>Body of POST and PUT /api/rules.</summary>
public sealed record RuleRequest(
    [property: Description("A label for people; defaults to the action and filter.")] string? Name,
    [property: Description("Filter expression selecting the messages, e.g. \"~wq & ~text\".")] string? Filter,
    [property: Description("\"drop\", \"replace\", \"delay\" or \"hold\".")] string? Action,
    [property: Description("Required for replace.")] ReplaceSpec? Replace,
    [property: Description("Required for delay: milliseconds, 1-60000.")] int? DelayMs,
    [property: Description("Default true.")] bool? Enabled)
{
    // The read-only fields of a RuleView: accepted, so that a rule read with GET can be changed and sent back as it is
    // (unknown fields are refused), and ignored.

    [Description("Read-only (the rule's id is in the URL); accepted and ignored.")]
    public string? Id { get; init; }

    [Description("Read-only; accepted and ignored.")]
    public long? Hits { get; init; }

    [Description("Read-only; accepted and ignored.")]
    public long? FilterTimeouts { get; init; }

    [Description("Read-only; accepted and ignored: send the version as If-Match to refuse a write over someone else's.")]
    public long? Version { get; init; }
}

/// <summary>A rule as the API shows it, with its hit counter.</summary>
/// <param name="FilterTimeouts">How often a regex of the filter timed out on a message, which then counted as no match.</param>
/// <param name="Version">The definition's version (1 when created, one more on each change; hits do not change it). Single-rule answers carry it as the ETag "\"{version}\""; send that as If-Match to change the rule only if nobody changed it since.</param>
public sealed record RuleView(string Id, string Name, string Filter, string Action, ReplaceSpec? Replace, int? DelayMs, bool Enabled, long Hits, long FilterTimeouts, long Version);

/// <summary>A rule's counters, as the hub's RuleHits sends them while traffic flows.</summary>
public sealed record RuleCounters(string Id, long Hits, long FilterTimeouts);

/// <summary>Body of POST /api/rules/{id}/move: where the rule goes in the order rules run in.</summary>
public sealed record RuleMove(
    [property: Description("The rule's new place, from 0 (runs first) to the number of rules less one; the others keep their order around it.")] int? Index);

/// <summary>Body of PATCH /api/rules/{id}: switches a rule on or off without sending (and so without undoing) the rest of it.</summary>
public sealed record RulePatch(
    [property: Description("true to run the rule, false to keep it without running it.")] bool? Enabled);
