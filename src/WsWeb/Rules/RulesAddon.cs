using System.Text;
using System.Text.RegularExpressions;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Intercept;
using WsWeb.Proxy;

namespace WsWeb.Rules;

/// <summary>
/// Applies the rules to every message, in rule order, before intercept sees it. A drop ends the chain;
/// replace, delay and hold let later rules run on the result.
/// </summary>
internal sealed partial class RulesAddon(RuleStore rules, InterceptService intercept, ProxyOptions options, TimeProvider time, ILogger<RulesAddon> logger) : IWebSocketAddon
{

    public async ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        foreach (var rule in rules.Rules)
        {
            if (!rule.Enabled || message.Dropped)
            {
                continue;
            }

            var timeouts = rule.Filter.RelayTimeouts;
            var matched = rule.Filter.Matches(flow, message);
            if (rule.Filter.TakeFirstRelayTimeout())
            {
                LogFilterTimeout(rule.Name, rule.Filter.Expression);
            }

            if (!matched)
            {
                if (rule.Filter.RelayTimeouts != timeouts)
                {
                    // The rules page shows the timeouts beside the hits, and keeps them current the same way.
                    rules.CountersMoved();
                }

                continue;
            }

            switch (rule.Action)
            {
                case RuleAction.Drop:
                    Hit(rule);
                    message.Drop();
                    return;
                case RuleAction.Replace:
                    if (TryReplace(flow, rule, message))
                    {
                        Hit(rule);
                    }

                    break;
                case RuleAction.Delay:
                    Hit(rule);
                    await Task.Delay(TimeSpan.FromMilliseconds(rule.DelayMs ?? 0), time, cancellationToken);
                    break;
                case RuleAction.Hold:
                    Hit(rule);
                    intercept.RequestHold(message);
                    break;
            }
        }
    }

    private void Hit(Rule rule)
    {
        rule.Hit();
        rules.CountersMoved();
    }

    /// <returns>
    /// True if the rule applies to this kind of message (its hit counts even when nothing matched inside). A result
    /// that cannot be sent leaves the message as it was, the rule unhit and later rules still running.
    /// </returns>
    private bool TryReplace(HttpFlow flow, Rule rule, WebSocketMessage message)
    {
        // A result can be no larger than a message may be; it is given up as soon as it would be larger, before it
        // takes the memory.
        var maxBytes = (int)Math.Min(options.MaxMessageSize, Array.MaxLength);
        byte[]? result;
        bool fits;
        if (rule.Pattern is { } pattern && message.IsText)
        {
            try
            {
                fits = rule.Replacement!.TryReplace(pattern, message.Text, maxBytes, out result);
            }
            catch (RegexMatchTimeoutException)
            {
                // A pathological pattern must not stall the connection; the message goes on unchanged.
                LogReplaceRefused(flow.Id, message.Index, rule.Name, "the regex took too long");
                return false;
            }
            catch (DecoderFallbackException)
            {
                // An earlier addon left bytes that are not UTF-8 in a text message; replacing would mangle them.
                LogReplaceRefused(flow.Id, message.Index, rule.Name, "the message is not valid UTF-8 text");
                return false;
            }
            catch (EncoderFallbackException)
            {
                // .NET regexes see UTF-16: "." can take half of an emoji, leaving text that is not Unicode.
                LogReplaceRefused(flow.Id, message.Index, rule.Name, "the result splits a character (a regex matched half of a surrogate pair); match whole characters, e.g. (?:[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|.)");
                return false;
            }
        }
        else if (rule.BytePattern is { } bytes && !message.IsText)
        {
            fits = TryReplaceBytes(message.Content, bytes, rule.ByteReplacement!, maxBytes, out result);
        }
        else
        {
            return false;
        }

        if (!fits)
        {
            LogReplaceRefused(flow.Id, message.Index, rule.Name, $"the result would be more than the maximum message size ({options.MaxMessageSize} bytes)");
            return false;
        }

        if (result is not null && !result.AsSpan().SequenceEqual(message.Content))
        {
            message.Content = result;
        }

        return true;
    }

    /// <param name="result">The content with every occurrence of <paramref name="pattern"/> replaced; null if there was none.</param>
    /// <returns>False if the result would be more than <paramref name="maxBytes"/>; then nothing was built.</returns>
    internal static bool TryReplaceBytes(byte[] content, byte[] pattern, byte[] replacement, int maxBytes, out byte[]? result)
    {
        result = null;
        var rest = content.AsSpan();
        var first = rest.IndexOf(pattern);
        if (first < 0)
        {
            return true;
        }

        // Counting first tells the size exactly: a result too large costs no memory, one that fits is written once.
        var length = content.Length + ((long)rest[first..].Count(pattern) * (replacement.Length - pattern.Length));
        if (length > maxBytes)
        {
            return false;
        }

        result = GC.AllocateUninitializedArray<byte>((int)length);
        var output = result.AsSpan();
        int at;
        while ((at = rest.IndexOf(pattern)) >= 0)
        {
            rest[..at].CopyTo(output);
            replacement.CopyTo(output[at..]);
            output = output[(at + replacement.Length)..];
            rest = rest[(at + pattern.Length)..];
        }

        rest.CopyTo(output);
        return true;
    }

    [LoggerMessage(2, LogLevel.Warning, "Rule '{Rule}': a regex of its filter '{Filter}' timed out (100 ms) on a message, which then counted as no match; the rules page counts how often. Simplify the regex.")]
    private partial void LogFilterTimeout(string rule, string filter);

    [LoggerMessage(1, LogLevel.Warning, "Flow {FlowId}, message {Index}: rule '{Rule}' left the message unchanged: {Reason}.")]
    private partial void LogReplaceRefused(string flowId, long index, string rule, string reason);
}
