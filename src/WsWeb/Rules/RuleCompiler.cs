using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using WsWeb.Api;
using WsWeb.Core.Filters;

namespace WsWeb.Rules;

/// <summary>
/// A rule as a request gives it, checked and compiled (filter, regex or bytes, replacement template): what the API
/// answers a 400 for, and what rules.json is loaded through, so a saved rule is read as strictly as a new one.
/// </summary>
internal static class RuleCompiler
{
    internal const int MaxDelayMs = 60_000;

    // A rule's text is held for the life of the process and sent whole by every GET /api/rules and rules page:
    // without bounds, MaxRules rules of Kestrel's 30 MB bodies would be 30 GB. A label is a line of text.
    internal const int MaxNameLength = 256;

    // The replace regex runs on every message the filter selects, like the filter itself: the same bound.
    internal const int MaxPatternLength = 4096;

    // Room for a JSON document as the replacement; whole payloads are what inject is for.
    internal const int MaxReplacementLength = 16_384;

    // Rules run on the relay thread: a runaway regex gets cut off rather than stalling the connection.
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(250);

    /// <summary>Checks and compiles a rule as the API receives it; <see cref="RuleFile"/> loads saved rules through it too.</summary>
    public static bool TryCompile(string id, RuleRequest request, out Rule rule, out ValidationProblem problem)
    {
        rule = null!;
        problem = null!;
        if (request.Name?.Length > MaxNameLength)
        {
            problem = ApiProblems.Invalid("name", TooLong("name", request.Name.Length, MaxNameLength));
            return false;
        }

        if (string.IsNullOrWhiteSpace(request.Filter))
        {
            problem = ApiProblems.Invalid("filter", "filter is required (use ~all for every message).");
            return false;
        }

        if (!FlowFilter.TryParse(request.Filter, out var filter, out var error))
        {
            problem = ApiProblems.Invalid("filter", error.Message);
            return false;
        }

        RuleAction? action = request.Action?.ToLowerInvariant() switch
        {
            "drop" => RuleAction.Drop,
            "replace" => RuleAction.Replace,
            "delay" => RuleAction.Delay,
            "hold" => RuleAction.Hold,
            _ => null,
        };
        if (action is null)
        {
            problem = ApiProblems.Invalid("action", $"action must be 'drop', 'replace', 'delay' or 'hold', not '{request.Action}'.");
            return false;
        }

        Regex? pattern = null;
        ReplacementTemplate? replacement = null;
        byte[]? bytePattern = null, byteReplacement = null;
        if (action == RuleAction.Replace)
        {
            if (request.Replace is not { } replace)
            {
                problem = ApiProblems.Invalid("replace", "replace {pattern, replacement} is required for the replace action.");
                return false;
            }

            if (string.IsNullOrEmpty(replace.Pattern))
            {
                problem = ApiProblems.Invalid("replace.pattern", "pattern is required and must not be empty.");
                return false;
            }

            if (replace.Pattern.Length > MaxPatternLength)
            {
                problem = ApiProblems.Invalid("replace.pattern", TooLong("pattern", replace.Pattern.Length, MaxPatternLength));
                return false;
            }

            if (replace.Replacement is null)
            {
                problem = ApiProblems.Invalid("replace.replacement", "replacement is required (it may be empty).");
                return false;
            }

            if (replace.Replacement.Length > MaxReplacementLength)
            {
                problem = ApiProblems.Invalid("replace.replacement", TooLong("replacement", replace.Replacement.Length, MaxReplacementLength));
                return false;
            }

            if (replace.Binary == true)
            {
                if (!TryHex(replace.Pattern, out bytePattern) || bytePattern.Length == 0)
                {
                    problem = ApiProblems.Invalid("replace.pattern", "a binary pattern is hex bytes such as \"de ad be ef\".");
                    return false;
                }

                if (!TryHex(replace.Replacement, out byteReplacement))
                {
                    problem = ApiProblems.Invalid("replace.replacement", "a binary replacement is hex bytes such as \"00 01\" (or empty).");
                    return false;
                }
            }
            else
            {
                try
                {
                    pattern = new Regex(replace.Pattern, RegexOptions.CultureInvariant, RegexTimeout);
                }
                catch (ArgumentException ex)
                {
                    problem = ApiProblems.Invalid("replace.pattern", $"invalid regex: {ex.Message}");
                    return false;
                }

                replacement = ReplacementTemplate.Parse(pattern, replace.Replacement);
            }
        }

        // A field the action does not use would be dropped without a word: {"action": "drop", "delayMs": 500} meant
        // something else (a delay) and would drop every message it matches. Null is what GET answers, so it is fine.
        if (action != RuleAction.Replace && request.Replace is not null)
        {
            problem = ApiProblems.Invalid("replace", $"replace is only for the replace action; a {action.Value.ToString().ToLowerInvariant()} rule does not use it. Leave it out, or set action to replace.");
            return false;
        }

        if (action != RuleAction.Delay && request.DelayMs is not null)
        {
            problem = ApiProblems.Invalid("delayMs", $"delayMs is only for the delay action; a {action.Value.ToString().ToLowerInvariant()} rule does not use it. Leave it out, or set action to delay.");
            return false;
        }

        if (action == RuleAction.Delay && request.DelayMs is not (>= 1 and <= MaxDelayMs))
        {
            problem = ApiProblems.Invalid("delayMs", $"delayMs is required for the delay action, 1-{MaxDelayMs}.");
            return false;
        }

        rule = new Rule
        {
            Id = id,
            Name = string.IsNullOrWhiteSpace(request.Name) ? $"{action.Value.ToString().ToLowerInvariant()} {filter.Expression}" : request.Name,
            Filter = filter,
            Action = action.Value,
            Replace = action == RuleAction.Replace ? request.Replace : null,
            Pattern = pattern,
            Replacement = replacement,
            BytePattern = bytePattern,
            ByteReplacement = byteReplacement,
            DelayMs = action == RuleAction.Delay ? request.DelayMs : null,
            Enabled = request.Enabled ?? true,
        };
        return true;
    }

    private static string TooLong(string field, int length, int limit) =>
        string.Create(CultureInfo.InvariantCulture, $"{field} is {length} characters, at most {limit} characters.");

    private static bool TryHex(string text, out byte[] bytes)
    {
        try
        {
            bytes = Convert.FromHexString(text.Replace(" ", "", StringComparison.Ordinal));
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}
