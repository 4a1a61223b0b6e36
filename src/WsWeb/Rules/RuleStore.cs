using System.Collections.Immutable;

namespace WsWeb.Rules;

/// <summary>
/// The rules, in the order they run, for the life of the process. Copy-on-write: the relay reads the
/// array on every message without a lock, the API's rare writes take one.
/// </summary>
internal sealed class RuleStore
{
    private readonly object _gate = new();
    private ImmutableArray<Rule> _rules = [];

    public ImmutableArray<Rule> Rules => _rules;

    public Rule? Get(string id) => _rules.FirstOrDefault(r => r.Id == id);

    public void Add(Rule rule)
    {
        lock (_gate)
        {
            _rules = _rules.Add(rule);
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
