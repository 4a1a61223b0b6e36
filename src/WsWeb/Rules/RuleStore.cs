using System.Collections.Immutable;

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

    public Rule? Get(string id) => _rules.FirstOrDefault(r => r.Id == id);

    /// <summary>Appends a rule; false, and nothing added, when <see cref="MaxRules"/> are already there.</summary>
    /// <remarks>The count is checked under the same lock as the add, so concurrent creates cannot overshoot.</remarks>
    public bool TryAdd(Rule rule)
    {
        lock (_gate)
        {
            if (_rules.Length >= MaxRules)
            {
                return false;
            }

            _rules = _rules.Add(rule);
            return true;
        }
    }

    /// <summary>Replaces a rule in place (keeping its position and hits); false if it is unknown.</summary>
    public bool Update(Rule rule)
    {
        lock (_gate)
        {
            var index = _rules.IndexOf(Get(rule.Id)!);
            if (index < 0)
            {
                return false;
            }

            rule.InheritHits(_rules[index]);
            _rules = _rules.SetItem(index, rule);
            return true;
        }
    }

    public bool Remove(string id)
    {
        lock (_gate)
        {
            var rule = Get(id);
            if (rule is null)
            {
                return false;
            }

            _rules = _rules.Remove(rule);
            return true;
        }
    }
}
