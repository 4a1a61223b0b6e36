using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using WsWeb.Core.Formats;

namespace WsWeb.Rules;

/// <summary>
/// A text replace rule's replacement, parsed once against its regex the way .NET reads it ($1, ${1}, ${name}, $$,
/// $&amp;, $`, $', $+, $_; any other $ is literal), so that a result too large to send can be given up while it is
/// built. Regex.Replace builds all of it first: "(a)" to "$1" and 16 KB more, on a 40 KB message, asked for 1.3 GB
/// before its size could be checked.
/// </summary>
internal sealed class ReplacementTemplate
{
    // Group numbers are >= 0; these stand for the other substitutions.
    private const int LeftPortion = -1;
    private const int RightPortion = -2;
    private const int WholeInput = -3;

    private readonly string _replacement;
    private readonly Piece[] _pieces;

    // The replacement when it substitutes nothing.
    private readonly string? _literal;
    private readonly int _literalChars;

    // Substitutions whose text lies inside the match, so all matches together substitute at most the whole text
    // once per substitution; and the others ($`, $', $_, groups of a regex that looks around), each of which can
    // substitute up to the whole text on every match.
    private readonly int _insideMatch;
    private readonly int _anywhere;

    // Why .NET refuses this replacement, which it does whatever the input.
    private readonly string? _invalid;

    private ReplacementTemplate(string replacement, Piece[] pieces, bool looksAround, string? invalid)
    {
        _replacement = replacement;
        _pieces = pieces;
        _invalid = invalid;
        foreach (var piece in pieces)
        {
            if (piece.Literal is { } literal)
            {
                _literalChars += literal.Length;
            }
            else if (piece.Group >= 0 && !looksAround)
            {
                _insideMatch++;
            }
            else
            {
                _anywhere++;
            }
        }

        if (_insideMatch + _anywhere == 0)
        {
            _literal = pieces.Length == 0 ? "" : pieces[0].Literal;
        }
    }

    public static ReplacementTemplate Parse(Regex regex, string replacement)
    {
        var pieces = new List<Piece>();
        var literal = new StringBuilder();
        string? invalid = null;
        var at = 0;
        while (at < replacement.Length)
        {
            var dollar = replacement.IndexOf('$', at);
            if (dollar < 0)
            {
                literal.Append(replacement, at, replacement.Length - at);
                break;
            }

            literal.Append(replacement, at, dollar - at);
            var (group, end) = ReadDollar(regex, replacement, dollar + 1, ref invalid);
            if (group is { } number)
            {
                if (literal.Length > 0)
                {
                    pieces.Add(new Piece(literal.ToString(), 0));
                    literal.Clear();
                }

                pieces.Add(new Piece(null, number));
            }
            else
            {
                literal.Append('$');
            }

            at = end;
        }

        if (literal.Length > 0)
        {
            pieces.Add(new Piece(literal.ToString(), 0));
        }

        // Only a lookaround (a conditional's test is one) captures outside its match. Looking for the text
        // anywhere in the pattern, escaped or in a class too, errs towards the slower, bounded way.
        var pattern = regex.ToString();
        var looksAround = pattern.Contains("(?=", StringComparison.Ordinal) || pattern.Contains("(?!", StringComparison.Ordinal)
            || pattern.Contains("(?<=", StringComparison.Ordinal) || pattern.Contains("(?<!", StringComparison.Ordinal)
            || pattern.Contains("(?(", StringComparison.Ordinal);
        return new ReplacementTemplate(replacement, [.. pieces], looksAround, invalid);
    }

    // As .NET's RegexParser.ScanDollar reads the $ just before start (left to right, not ECMAScript): the group or
    // portion it stands for, or null for a literal $; and where reading goes on.
    private static (int? Group, int End) ReadDollar(Regex regex, string text, int start, ref string? invalid)
    {
        if (start == text.Length)
        {
            return (null, start);
        }

        var at = start;
        var braced = text[at] == '{' && text.Length - at > 1;
        if (braced)
        {
            at++;
        }

        if (char.IsAsciiDigit(text[at]))
        {
            var number = 0L;
            for (; at < text.Length && char.IsAsciiDigit(text[at]); at++)
            {
                number = (number * 10) + (text[at] - '0');
                if (number > int.MaxValue)
                {
                    invalid ??= $"the group number after the $ at offset {start - 1} of the replacement is more than {int.MaxValue}";
                    return (null, start);
                }
            }

            if (braced && (at == text.Length || text[at++] != '}'))
            {
                return (null, start);
            }

            return Array.IndexOf(regex.GetGroupNumbers(), (int)number) >= 0 ? ((int)number, at) : (null, start);
        }

        if (braced)
        {
            // A group name is word characters and does not start with a digit, so only all of the text up to the
            // first '}' can name one.
            var close = text.IndexOf('}', at);
            var name = close < 0 ? null : text[at..close];
            return name is not null && Array.IndexOf(regex.GetGroupNames(), name) >= 0 ? (regex.GroupNumberFromName(name), close + 1) : (null, start);
        }

        return text[at] switch
        {
            '$' => (null, at + 1),
            '&' => (0, at + 1),
            '`' => (LeftPortion, at + 1),
            '\'' => (RightPortion, at + 1),
            '+' => (regex.GetGroupNumbers()[^1], at + 1),
            '_' => (WholeInput, at + 1),
            _ => (null, start),
        };
    }

    /// <summary>Replaces every match of <paramref name="regex"/>, the regex this was parsed against, in <paramref name="text"/>.</summary>
    /// <param name="result">The result as UTF-8; null if nothing matched, or if it would be more than <paramref name="maxBytes"/>.</param>
    /// <returns>False if the result would be more than <paramref name="maxBytes"/> bytes: it was built no further than that.</returns>
    /// <exception cref="RegexMatchTimeoutException">All the matching together took longer than the regex's timeout.</exception>
    /// <exception cref="EncoderFallbackException">The result is not Unicode: a match took half of a surrogate pair.</exception>
    /// <exception cref="ArgumentException">.NET refuses this replacement.</exception>
    public bool TryReplace(Regex regex, string text, int maxBytes, out byte[]? result)
    {
        if (_invalid is not null)
        {
            throw new ArgumentException(_invalid);
        }

        result = null;
        if (MostBytes(text.Length) <= maxBytes)
        {
            // Regex.Replace reuses one Match for all matches: the cheaper way whenever no result could be too large.
            var replaced = regex.Replace(text, _replacement);
            if (!ReferenceEquals(replaced, text))
            {
                result = FlowText.StrictUtf8.GetBytes(replaced);
            }

            return true;
        }

        var output = new BoundedText(maxBytes);
        var deadline = regex.MatchTimeout == Regex.InfiniteMatchTimeout ? long.MaxValue : Environment.TickCount64 + (long)regex.MatchTimeout.TotalMilliseconds;
        var end = 0;
        var matched = false;
        if (_literal is { } literal)
        {
            foreach (var match in regex.EnumerateMatches(text))
            {
                matched = true;
                if (!output.TryAppend(text.AsSpan(end, match.Index - end)) || !output.TryAppend(literal))
                {
                    return false;
                }

                end = match.Index + match.Length;
                CheckTime(regex, text, deadline);
            }
        }
        else
        {
            for (var match = regex.Match(text); match.Success; match = match.NextMatch())
            {
                matched = true;
                if (!output.TryAppend(text.AsSpan(end, match.Index - end)) || !TryAppend(output, text, match))
                {
                    return false;
                }

                end = match.Index + match.Length;
                CheckTime(regex, text, deadline);
            }
        }

        if (!matched)
        {
            return true;
        }

        if (!output.TryAppend(text.AsSpan(end)))
        {
            return false;
        }

        result = output.ToUtf8();
        return true;
    }

    /// <summary>
    /// The most UTF-8 bytes replacing in a text of <paramref name="length"/> chars can make: at most length + 1
    /// matches (an empty match moves on by a char), each char at most 3 bytes.
    /// </summary>
    internal double MostBytes(int length)
    {
        var chars = (double)length;
        return 3 * (chars + ((chars + 1) * _literalChars) + (_insideMatch * chars) + ((chars + 1) * _anywhere * chars));
    }

    private bool TryAppend(BoundedText output, string text, Match match)
    {
        foreach (var piece in _pieces)
        {
            var value = piece.Literal is { } literal ? literal.AsSpan() : piece.Group switch
            {
                0 => match.ValueSpan,
                LeftPortion => text.AsSpan(0, match.Index),
                RightPortion => text.AsSpan(match.Index + match.Length),
                WholeInput => text.AsSpan(),
                var group => match.Groups[group].ValueSpan,
            };
            if (!output.TryAppend(value))
            {
                return false;
            }
        }

        return true;
    }

    // Regex.Replace times out when all of its matching takes longer than the timeout, but each Match or
    // EnumerateMatches step has the whole timeout to itself: without this, many slow matches would stall the
    // connection for as long as they liked.
    private static void CheckTime(Regex regex, string text, long deadline)
    {
        if (Environment.TickCount64 > deadline)
        {
            throw new RegexMatchTimeoutException(text, regex.ToString(), regex.MatchTimeout);
        }
    }

    private readonly record struct Piece(string? Literal, int Group);

    /// <summary>
    /// Text that refuses to grow past a number of UTF-8 bytes. Chunked, so growing copies nothing: all it ever holds
    /// is at most the limit in chars (UTF-8 is never fewer bytes than chars).
    /// </summary>
    private sealed class BoundedText(int limit)
    {
        private readonly StringBuilder _text = new();
        private long _bytes;
        private bool _endsInHighSurrogate;

        public bool TryAppend(ReadOnlySpan<char> chars)
        {
            if (chars.IsEmpty)
            {
                return true;
            }

            // Each piece is counted alone; a surrogate pair split between two pieces (a match can end inside one)
            // counted as two halves of 3 bytes each is one character of 4.
            var bytes = Encoding.UTF8.GetByteCount(chars);
            if (_endsInHighSurrogate && char.IsLowSurrogate(chars[0]))
            {
                bytes -= 2;
            }

            if (bytes > limit - _bytes)
            {
                return false;
            }

            _text.Append(chars);
            _bytes += bytes;
            _endsInHighSurrogate = char.IsHighSurrogate(chars[^1]);
            return true;
        }

        /// <exception cref="EncoderFallbackException">The text is not Unicode.</exception>
        public byte[] ToUtf8()
        {
            var bytes = GC.AllocateUninitializedArray<byte>((int)_bytes);
            var encoder = FlowText.StrictUtf8.GetEncoder();
            var written = 0;
            foreach (var chunk in _text.GetChunks())
            {
                written += encoder.GetBytes(chunk.Span, bytes.AsSpan(written), flush: false);
            }

            written += encoder.GetBytes([], bytes.AsSpan(written), flush: true);
            Debug.Assert(written == bytes.Length, "Valid text is as many bytes as counted.");
            return bytes;
        }
    }
}
