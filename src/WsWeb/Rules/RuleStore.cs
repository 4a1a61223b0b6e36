using System.Collections.Immutable;
using WsWeb.Api;

namespace WsWeb.Rules;

/// <summary>
/// The rules, in the order they run, for the life of the process. Copy-on-write: the relay reads the
/// array on every message without a lock, the API's rare writes take one.
/// </summary>
internal sealed class RuleStore
{
    /// <summary>
    /// The most rules the store keeps. Every rule's filter runs on every relayed message, so rules cost each
    /// WebSocket in proportion to their number; filters are bounded (4096 characters, 100 terms) but a script
    /// could add rules without end. People keep a handful; a script generating one per endpoint or per user
    /// stays in the hundreds. A thousand leaves room for both, and bounds the work per message to what a
    /// thousand filters cost.
    /// </summary>
    public const int MaxRules = 1000;

    private readonly object _gate = new();
    private ImmutableArray<Rule> _rules = [];

    public ImmutableArray<Rule> Rules => _rules;

    /// <summary>
    /// A rule was created, changed or removed; raised after the change is visible, outside the lock. The hub forwards
    /// it to every open rules page, so none keeps showing (and later sends back) a definition that is gone.
    /// </summary>
    public event Action? Changed;

    /// <summary>
    /// A rule's counters moved (a hit, a filter timeout). Raised on the relay thread for every one: a handler must only
    /// mark something to send later (the hub's feeds coalesce it to one RuleHits per tick).
    /// </summary>
    public event Action? CountersChanged;

    public Rule? Get(string id) => _rules.FirstOrDefault(r => r.Id == id);

    /// <summary>
    /// Appends a rule at <paramref name="version"/> (1 for a new rule; a rule loaded from rules.json keeps the version it
    /// was saved at, so an If-Match read before a restart does not match a teammate's change after it); false, and
    /// nothing added, when <see cref="MaxRules"/> are already there.
    /// </summary>
    /// <remarks>The count is checked under the same lock as the add, so concurrent creates cannot overshoot.</remarks>
    public bool TryAdd(Rule rule, out Rule added, long version = 1)
    {
        lock (_gate)
        {
            added = rule.With(version, rule.Enabled);
            if (_rules.Length >= MaxRules)
            {
                return false;
            }

            _rules = _rules.Add(added);
        }

        Changed?.Invoke();
        return true;
    }

    /// <summary>
    /// Replaces a rule's definition in place (keeping its position and hits) at the next version, if its version still
    /// matches <paramref name="ifMatch"/> (null: whatever it is). <paramref name="current"/> is the rule after the write,
    /// or as it is when the precondition failed; null when there is no such rule.
    /// </summary>
    /// <remarks>
    /// The check and the write are made under one lock: two PUTs sent with the same If-Match cannot both see the old
    /// version and both succeed.
    /// </remarks>
    /// <remarks>A definition equal to the current one is no change: the version stays, so a script that PUTs the same rule
    /// again and again does not make a teammate's If-Match stale.</remarks>
    public RuleWrite TryReplace(Rule rule, IfMatch? ifMatch, out Rule? current) =>
        TryChange(rule.Id, ifMatch, old => old.SameDefinition(rule) ? old : rule.With(old.Version + 1, rule.Enabled), out current);

    /// <summary>Switches a rule on or off, leaving the rest of its definition as it is now. Not switching is no change.</summary>
    public RuleWrite TrySetEnabled(string id, bool enabled, IfMatch? ifMatch, out Rule? current) =>
        TryChange(id, ifMatch, old => old.Enabled == enabled ? old : old.With(old.Version + 1, enabled), out current);

    public RuleWrite TryRemove(string id, IfMatch? ifMatch, out Rule? current)
    {
        lock (_gate)
        {
            current = Get(id);
            if (current is null)
            {
                return RuleWrite.NotFound;
            }

            if (ifMatch is not null && !ifMatch.Matches(current.Version))
            {
                return RuleWrite.VersionMismatch;
            }

            _rules = _rules.Remove(current);
        }

        Changed?.Invoke();
        return RuleWrite.Done;
    }

    /// <summary>
    /// Puts a rule at <paramref name="index"/> in the order rules run in (its definition and version stay as they are);
    /// false when there is no such rule. The index is within the rules there are (checked by the caller, clamped here).
    /// </summary>
    public bool TryMove(string id, int index)
    {
        lock (_gate)
        {
            if (Get(id) is not { } rule)
            {
                return false;
            }

            var without = _rules.Remove(rule);
            _rules = without.Insert(Math.Clamp(index, 0, without.Length), rule);
        }

        Changed?.Invoke();
        return true;
    }

    /// <summary>Tells the hub a counter moved (see <see cref="CountersChanged"/>).</summary>
    public void CountersMoved() => CountersChanged?.Invoke();

    private RuleWrite TryChange(string id, IfMatch? ifMatch, Func<Rule, Rule> change, out Rule? current)
    {
        lock (_gate)
        {
            current = Get(id);
            if (current is null)
            {
                return RuleWrite.NotFound;
            }

            if (ifMatch is not null && !ifMatch.Matches(current.Version))
            {
                return RuleWrite.VersionMismatch;
            }

            var next = change(current);
            if (ReferenceEquals(next, current))
            {
                return RuleWrite.Done;
            }

            // Relay threads still running the old rule object keep counting into the same counter: no hit is lost.
            next.InheritHits(current);
            _rules = _rules.SetItem(_rules.IndexOf(current), next);
            current = next;
        }

        Changed?.Invoke();
        return RuleWrite.Done;
    }
}

internal enum RuleWrite
{
    Done,
    NotFound,

    /// <summary>If-Match named another version than the rule's: nothing was written.</summary>
    VersionMismatch,
}
