using System.Text.RegularExpressions;
using WsWeb.Core.Filters;

namespace WsWeb.Rules;

internal enum RuleAction
{
    Drop,
    Replace,
    Delay,
    Hold,
}

/// <summary>A validated, compiled rule. Hits are counted across relay threads.</summary>
internal sealed class Rule
{
    // A box, so an update can hand the same counter to the new rule: relay threads still running the old
    // rule object keep counting into it.
    private HitCounter _hits = new();

    public required string Id { get; init; }

    public required string Name { get; init; }

    public required FlowFilter Filter { get; init; }

    public required RuleAction Action { get; init; }

    /// <summary>The replace spec as given, echoed back by the API.</summary>
    public ReplaceSpec? Replace { get; init; }

    /// <summary>Text replace: a regex over the message text.</summary>
    public Regex? Pattern { get; init; }

    /// <summary>Text replace: what a match of <see cref="Pattern"/> becomes, parsed against it.</summary>
    public ReplacementTemplate? Replacement { get; init; }

    /// <summary>Binary replace: the byte sequence to find and what to put instead.</summary>
    public byte[]? BytePattern { get; init; }

    public byte[]? ByteReplacement { get; init; }

    public int? DelayMs { get; init; }

    public bool Enabled { get; init; }

    /// <summary>
    /// The definition's version: 1 when created, one more on every change (PUT, PATCH). Hits do not change it: it
    /// is what If-Match compares, so a page that only saw the counters move can still save.
    /// </summary>
    public long Version { get; init; }

    public long Hits => Interlocked.Read(ref _hits.Count);

    public void Hit() => Interlocked.Increment(ref _hits.Count);

    /// <summary>Shares the counter with the rule this one replaces (an update), so no hit is lost meanwhile.</summary>
    public void InheritHits(Rule previous) => _hits = previous._hits;

    /// <summary>This definition at another version, switched on or off; it counts into the same hit counter.</summary>
    public Rule With(long version, bool enabled)
    {
        var copy = new Rule
        {
            Id = Id,
            Name = Name,
            Filter = Filter,
            Action = Action,
            Replace = Replace,
            Pattern = Pattern,
            Replacement = Replacement,
            BytePattern = BytePattern,
            ByteReplacement = ByteReplacement,
            DelayMs = DelayMs,
            Enabled = enabled,
            Version = version,
        };
        copy.InheritHits(this);
        return copy;
    }

    /// <summary>Whether <paramref name="other"/> defines the same rule: what the API accepts, not hits or version.</summary>
    public bool SameDefinition(Rule other) =>
        Name == other.Name && Filter.Expression == other.Filter.Expression && Action == other.Action
        && Replace == other.Replace && DelayMs == other.DelayMs && Enabled == other.Enabled;

    public RuleView ToView() => new(Id, Name, Filter.Expression, Action.ToString().ToLowerInvariant(), Replace, DelayMs, Enabled, Hits, Filter.RelayTimeouts, Version);

    public RuleCounters ToCounters() => new(Id, Hits, Filter.RelayTimeouts);
}

internal sealed class HitCounter
{
    public long Count;
}
