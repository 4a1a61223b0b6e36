using System.Text.RegularExpressions;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Intercept;

namespace WsWeb.Rules;

/// <summary>
/// Applies the rules to every message, in rule order, before intercept sees it. A drop ends the chain;
/// replace, delay and hold let later rules run on the result.
/// </summary>
internal sealed class RulesAddon(RuleStore rules, InterceptService intercept, TimeProvider time) : IWebSocketAddon
{
    public async ValueTask WebSocketMessageAsync(HttpFlow flow, WebSocketMessage message, CancellationToken cancellationToken)
    {
        foreach (var rule in rules.Rules)
        {
            if (!rule.Enabled || message.Dropped || !rule.Filter.Matches(flow, message))
            {
                continue;
            }

            switch (rule.Action)
            {
                case RuleAction.Drop:
                    rule.Hit();
                    message.Drop();
                    return;
                case RuleAction.Replace:
                    if (TryReplace(rule, message))
                    {
                        rule.Hit();
                    }

                    break;
                case RuleAction.Delay:
                    rule.Hit();
                    await Task.Delay(TimeSpan.FromMilliseconds(rule.DelayMs ?? 0), time, cancellationToken);
                    break;
                case RuleAction.Hold:
                    rule.Hit();
                    intercept.RequestHold(message);
                    break;
            }
        }
    }

    /// <returns>True if the rule applies to this kind of message (its hit counts even when nothing matched inside).</returns>
    private static bool TryReplace(Rule rule, WebSocketMessage message)
    {
        if (rule.Pattern is { } pattern && message.IsText)
        {
            try
            {
                message.Text = pattern.Replace(message.Text, rule.Replace!.Replacement ?? "");
            }
            catch (RegexMatchTimeoutException)
            {
                // A pathological pattern must not stall the connection; the message goes on unchanged.
            }

            return true;
        }

        if (rule.BytePattern is { } bytes && !message.IsText)
        {
            message.Content = ReplaceBytes(message.Content, bytes, rule.ByteReplacement!);
            return true;
        }

        return false;
    }

    internal static byte[] ReplaceBytes(byte[] content, byte[] pattern, byte[] replacement)
    {
        var first = content.AsSpan().IndexOf(pattern);
        if (first < 0)
        {
            return content;
        }

        using var output = new MemoryStream(content.Length);
        var rest = content.AsSpan();
        int at;
        while ((at = rest.IndexOf(pattern)) >= 0)
        {
            output.Write(rest[..at]);
            output.Write(replacement);
            rest = rest[(at + pattern.Length)..];
        }

        output.Write(rest);
        return output.ToArray();
    }
}
