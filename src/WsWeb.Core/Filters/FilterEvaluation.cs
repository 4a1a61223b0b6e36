using System.Text.RegularExpressions;

namespace WsWeb.Core.Filters;

/// <summary>A compiled regex with where it came from, so a timeout can point at the operator at fault.</summary>
internal sealed class FilterRegex(Regex regex, string op, string pattern, int position, int length)
{
    public Regex Regex => regex;

    public string Operator => op;

    public string Pattern => pattern;

    public int Position => position;

    public int Length => length;
}

/// <summary>
/// What one evaluation runs under, passed down the node tree by reference: a struct so the relay's hot path
/// stays allocation-free.
/// </summary>
internal readonly struct FilterEvaluation(FlowFilter filter, FilterMode mode, CancellationToken cancellationToken)
{
    /// <summary>Messages of one flow scanned between two cancellation checks: a check is cheap, but not free.</summary>
    private const int CheckEvery = 64;

    public FilterMode Mode => mode;

    public void ThrowIfCancellationRequested() => cancellationToken.ThrowIfCancellationRequested();

    /// <summary>Checks for cancellation on every <see cref="CheckEvery"/>th item of a scan.</summary>
    public void ThrowIfCancellationRequested(long item)
    {
        if (item % CheckEvery == 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>A regex ran past its timeout: the query ends, or (relay) it counts as no match.</summary>
    public bool TimedOut(FilterRegex regex, RegexMatchTimeoutException exception)
    {
        if (mode == FilterMode.Query)
        {
            throw new FilterTimeoutException(regex, exception);
        }

        filter.NoteRelayTimeout();
        return false;
    }
}
