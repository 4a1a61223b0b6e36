using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace WsWeb.Core.Filters;

/// <summary>A value read from the expression: regex, number or literal, unquoted and unescaped.</summary>
internal readonly record struct FilterToken(string Text, int Position, int Length);

/// <summary>
/// Hand-written recursive-descent parser with an on-demand scanner. Scanning follows the parser because
/// what a character means depends on where it is, as in mitmproxy: after <c>~u</c> the text <c>a|b</c>
/// is one regex, between terms <c>|</c> means "or".
/// </summary>
/// <remarks>
/// Grammar, loosest first (mitmproxy's precedence: adjacent terms form an implicit "and" that binds
/// looser than <c>|</c>, so <c>~q | ~s ~e</c> is <c>(~q | ~s) &amp; ~e</c>):
/// <code>
/// sequence := or+
/// or       := and ('|' and)*
/// and      := unary ('&amp;' unary)*
/// unary    := '!' unary | '(' sequence ')' | '~' name argument? | value
/// value    := '"' … '"' | "'" … "'" | run of chars other than whitespace ( ) ~ " '
/// </code>
/// </remarks>
internal sealed class FilterParser
{
    // Parentheses and '!' recurse; without a bound a hostile "((((…" would overflow the stack,
    // which no catch can stop.
    private const int MaxDepth = 100;

    // Rule and intercept filters run on every message of every connection, and each term (operator or bare
    // value) is evaluated on its own: "~b zq0 | ~b zq1 | … ~b zq19999", accepted by one API call, made every
    // message cost 20,000 regex scans and slowed the relay to about ten messages a second. Terms are the
    // multiplier, so they are bounded; the length bounds parsing (each regex is compiled) and a single huge
    // regex. Hand-written filters stay far below both, and many alternatives fit in one regex ("~d a|b|c").
    internal const int MaxLength = 4096;
    private const int MaxTerms = 100;

    private readonly string _text;
    private int _pos;
    private int _depth;
    private int _terms;

    private FilterParser(string text) => _text = text;

    private bool AtEnd => _pos >= _text.Length;

    private char Current => _text[_pos];

    /// <exception cref="FilterParseException">The expression is invalid.</exception>
    public static FilterNode Parse(string text)
    {
        if (text.Length > MaxLength)
        {
            // Before any parsing: a huge expression costs nothing to refuse.
            throw Fail($"expression too long at position {MaxLength} ({text.Length} characters, at most {MaxLength})", MaxLength, text.Length - MaxLength);
        }

        var parser = new FilterParser(text);
        parser.SkipWhitespace();
        if (parser.AtEnd)
        {
            throw Fail("empty filter expression", 0, text.Length);
        }

        var node = parser.ParseSequence();
        if (!parser.AtEnd)
        {
            // ParseSequence stops only at the end or at a ')'.
            throw Fail($"unexpected ')' at position {parser._pos} without a matching '('", parser._pos, 1);
        }

        return node;
    }

    private static FilterParseException Fail(string message, int position, int length) =>
        new(new FilterParseError(message, position, length));

    private static bool IsValueTerminator(char c) => char.IsWhiteSpace(c) || c is '(' or ')' or '~' or '"' or '\'';

    /// <summary>Where an operator name or a fixed-syntax argument (number, size) must end.</summary>
    private static bool IsWordBoundary(char c) => IsValueTerminator(c) || c is '&' or '|' or '!';

    private static bool IsOperatorNameEnd(char c) => IsWordBoundary(c) || c is '<' or '>' or '=';

    private FilterNode ParseSequence()
    {
        var first = ParseOr();
        List<FilterNode>? terms = null;
        while (true)
        {
            SkipWhitespace();
            if (AtEnd || Current == ')')
            {
                break;
            }

            (terms ??= [first]).Add(ParseOr());
        }

        return terms is null ? first : new AndNode([.. terms]);
    }

    private FilterNode ParseOr() => ParseChain('|', ParseAnd, static terms => new OrNode(terms));

    private FilterNode ParseAnd() => ParseChain('&', ParseUnary, static terms => new AndNode(terms));

    /// <summary>Parses <c>operand (op operand)*</c>; one operand stands alone, more are combined.</summary>
    private FilterNode ParseChain(char op, Func<FilterNode> operand, Func<FilterNode[], FilterNode> combine)
    {
        var first = operand();
        List<FilterNode>? terms = null;
        while (true)
        {
            SkipWhitespace();
            if (AtEnd || Current != op)
            {
                break;
            }

            RequireTermAfter(op);
            (terms ??= [first]).Add(operand());
        }

        return terms is null ? first : combine([.. terms]);
    }

    /// <summary>Consumes a binary or unary operator and insists that a term follows.</summary>
    private void RequireTermAfter(char op)
    {
        var opPosition = _pos++;
        SkipWhitespace();
        if (AtEnd)
        {
            throw Fail($"unexpected end of expression after '{op}' at position {opPosition}", opPosition, 1);
        }
    }

    private FilterNode ParseUnary()
    {
        SkipWhitespace();
        var start = _pos;
        switch (Current)
        {
            case '!':
                EnterNesting(start);
                RequireTermAfter('!');
                var inner = ParseUnary();
                _depth--;
                return new NotNode(inner);

            case '(':
                EnterNesting(start);
                _pos++;
                SkipWhitespace();
                if (AtEnd)
                {
                    throw Fail($"missing ')' opened at position {start}", start, 1);
                }

                if (Current == ')')
                {
                    throw Fail($"empty parentheses at position {start}", start, _pos + 1 - start);
                }

                var group = ParseSequence();
                if (AtEnd)
                {
                    throw Fail($"missing ')' opened at position {start}", start, 1);
                }

                _pos++;
                _depth--;
                return group;

            case ')' or '&' or '|':
                throw Fail($"unexpected '{Current}' at position {start}: expected a filter term", start, 1);

            case '~':
                return CountTerm(start, ParseOperator());

            default:
                // A bare value is a URL regex, as in mitmproxy.
                return CountTerm(start, new FlowTextNode(FlowTextPart.Url, CompileRegex(ReadValue("expected a filter term"), "~u", RegexOptions.IgnoreCase)));
        }
    }

    /// <summary>Counts a term that was just read from <paramref name="start"/>; past <see cref="MaxTerms"/> it is highlighted.</summary>
    private FilterNode CountTerm(int start, FilterNode term)
    {
        if (++_terms > MaxTerms)
        {
            throw Fail(
                $"too many terms at position {start} (more than {MaxTerms} operators and values); combine alternatives in one regex, e.g. ~b \"a|b\" rather than ~b a | ~b b",
                start,
                _pos - start);
        }

        return term;
    }

    private void EnterNesting(int position)
    {
        if (++_depth > MaxDepth)
        {
            throw Fail($"expression nested too deeply at position {position} (more than {MaxDepth} levels)", position, 1);
        }
    }

    private FilterNode ParseOperator()
    {
        var start = _pos++;
        while (!AtEnd && !IsOperatorNameEnd(Current))
        {
            _pos++;
        }

        var name = _text[(start + 1).._pos];
        return name switch
        {
            "" => throw Fail($"missing operator name after '~' at position {start}", start, 1),

            // mitmproxy's flow operators.
            "all" or "http" => new FlowConditionNode(FlowCondition.Always),
            "tcp" or "udp" or "dns" => new FlowConditionNode(FlowCondition.Never),
            "websocket" => new FlowConditionNode(FlowCondition.WebSocket),
            "q" => new FlowConditionNode(FlowCondition.NoResponse),
            "s" => new FlowConditionNode(FlowCondition.HasResponse),
            "e" => new FlowConditionNode(FlowCondition.Error),
            "marked" => new FlowConditionNode(FlowCondition.Marked),
            "replay" => new FlowConditionNode(FlowCondition.Replay),
            "replayq" => new FlowConditionNode(FlowCondition.ReplayRequest),
            "replays" => new FlowConditionNode(FlowCondition.ReplayResponse),

            // WsWeb's flow operators.
            "live" => new FlowConditionNode(FlowCondition.Live),
            "imported" => new FlowConditionNode(FlowCondition.Imported),
            "a" => new FlowConditionNode(FlowCondition.Asset),

            // Regex operators; only ~u, ~d and ~m ignore case, as in mitmproxy ≥ 10.2.
            "u" => new FlowTextNode(FlowTextPart.Url, ReadRegex(name, RegexOptions.IgnoreCase)),
            "d" => new FlowTextNode(FlowTextPart.Domain, ReadRegex(name, RegexOptions.IgnoreCase)),
            "m" => new FlowTextNode(FlowTextPart.Method, ReadRegex(name, RegexOptions.IgnoreCase)),
            "src" => new FlowTextNode(FlowTextPart.Source, ReadRegex(name, RegexOptions.None)),
            "dst" => new FlowTextNode(FlowTextPart.Destination, ReadRegex(name, RegexOptions.None)),
            "marker" => new FlowTextNode(FlowTextPart.Marker, ReadRegex(name, RegexOptions.None)),
            "h" => new HeaderNode(Side.Both, ReadRegex(name, RegexOptions.Multiline)),
            "hq" => new HeaderNode(Side.Request, ReadRegex(name, RegexOptions.Multiline)),
            "hs" => new HeaderNode(Side.Response, ReadRegex(name, RegexOptions.Multiline)),
            "t" => new ContentTypeNode(Side.Both, ReadRegex(name, RegexOptions.None)),
            "tq" => new ContentTypeNode(Side.Request, ReadRegex(name, RegexOptions.None)),
            "ts" => new ContentTypeNode(Side.Response, ReadRegex(name, RegexOptions.None)),
            "b" => new BodyNode(Side.Both, ReadRegex(name, RegexOptions.Singleline)),
            "bq" => new BodyNode(Side.Request, ReadRegex(name, RegexOptions.Singleline)),
            "bs" => new BodyNode(Side.Response, ReadRegex(name, RegexOptions.Singleline)),
            "c" => new StatusCodeNode(ReadStatusCode()),

            // Message operators (WsWeb's own).
            "wq" => new MessageConditionNode(MessageCondition.FromClient),
            "ws" => new MessageConditionNode(MessageCondition.FromServer),
            "text" => new MessageConditionNode(MessageCondition.Text),
            "binary" => new MessageConditionNode(MessageCondition.Binary),
            "injected" => new MessageConditionNode(MessageCondition.Injected),
            "dropped" => new MessageConditionNode(MessageCondition.Dropped),
            "edited" => new MessageConditionNode(MessageCondition.Edited),
            "size" => ParseSize(),
            "json" => ParseJson(),

            _ => throw Fail($"unknown operator '~{name}' at position {start}", start, name.Length + 1),
        };
    }

    private FilterRegex ReadRegex(string op, RegexOptions options)
    {
        SkipWhitespace();
        return CompileRegex(ReadValue($"~{op} expects a regex"), $"~{op}", options);
    }

    private static FilterRegex CompileRegex(FilterToken token, string op, RegexOptions options)
    {
        try
        {
            return new FilterRegex(RegexCache.Get(token.Text, options), op, token.Text, token.Position, token.Length);
        }
        catch (ArgumentException e)
        {
            throw Fail($"invalid regex for {op} at position {token.Position}: {e.Message}", token.Position, token.Length);
        }
    }

    /// <summary>Reads a quoted or unquoted value at the cursor (whitespace already skipped).</summary>
    private FilterToken ReadValue(string expectation)
    {
        if (AtEnd)
        {
            throw Fail($"{expectation} at position {_pos}", _pos, 0);
        }

        var c = Current;
        if (c is '"' or '\'')
        {
            return ReadQuoted();
        }

        if (IsValueTerminator(c))
        {
            throw Fail($"{expectation} at position {_pos}, found '{c}'", _pos, 1);
        }

        var start = _pos;
        while (!AtEnd && !IsValueTerminator(Current))
        {
            _pos++;
        }

        return new FilterToken(_text[start.._pos], start, _pos - start);
    }

    /// <summary>
    /// A quoted value. A backslash escapes the quote and itself; any other backslash sequence is kept as
    /// written, so regex escapes survive (<c>"\d+"</c> is the regex <c>\d+</c>; mitmproxy would read <c>d+</c>).
    /// </summary>
    private FilterToken ReadQuoted()
    {
        var start = _pos;
        var quote = _text[_pos++];
        var value = new StringBuilder();
        while (true)
        {
            if (AtEnd)
            {
                throw Fail($"unterminated string starting at position {start}", start, _pos - start);
            }

            var c = _text[_pos];
            if (c == quote)
            {
                _pos++;
                return new FilterToken(value.ToString(), start, _pos - start);
            }

            if (c == '\\' && _pos + 1 < _text.Length && (_text[_pos + 1] == quote || _text[_pos + 1] == '\\'))
            {
                value.Append(_text[_pos + 1]);
                _pos += 2;
                continue;
            }

            value.Append(c);
            _pos++;
        }
    }

    private int ReadStatusCode()
    {
        SkipWhitespace();
        var start = _pos;
        while (!AtEnd && char.IsAsciiDigit(Current))
        {
            _pos++;
        }

        if (_pos == start || !AtWordBoundary() || !int.TryParse(_text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
        {
            throw Fail($"~c expects a number at position {start}", start, ExtentOfJunk(start));
        }

        return code;
    }

    private FilterNode ParseSize()
    {
        SkipWhitespace();
        var comparison = SizeComparison.Equal;
        if (TryConsume(">="))
        {
            comparison = SizeComparison.GreaterOrEqual;
        }
        else if (TryConsume("<="))
        {
            comparison = SizeComparison.LessOrEqual;
        }
        else if (TryConsume("!="))
        {
            comparison = SizeComparison.NotEqual;
        }
        else if (TryConsume("==") || TryConsume("="))
        {
            comparison = SizeComparison.Equal;
        }
        else if (TryConsume(">"))
        {
            comparison = SizeComparison.Greater;
        }
        else if (TryConsume("<"))
        {
            comparison = SizeComparison.Less;
        }

        SkipWhitespace();
        var start = _pos;
        while (!AtEnd && char.IsAsciiDigit(Current))
        {
            _pos++;
        }

        var digitsEnd = _pos;
        while (!AtEnd && char.IsAsciiLetter(Current))
        {
            _pos++;
        }

        long multiplier = _text.AsSpan(digitsEnd, _pos - digitsEnd).ToString().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1024,
            "M" or "MB" or "MIB" => 1024 * 1024,
            _ => 0,
        };

        if (digitsEnd == start
            || multiplier == 0
            || !AtWordBoundary()
            || !long.TryParse(_text.AsSpan(start, digitsEnd - start), NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            || number > long.MaxValue / multiplier)
        {
            throw Fail($"~size expects a byte count such as >1024, <=10, >=4k or 0 at position {start}", start, ExtentOfJunk(start));
        }

        return new SizeNode(comparison, number * multiplier);
    }

    private FilterNode ParseJson()
    {
        SkipWhitespace();
        if (AtEnd || Current != '$')
        {
            throw Fail($"~json expects a path starting with '$' at position {_pos}", _pos, AtEnd ? 0 : ExtentOfJunk(_pos));
        }

        _pos++;
        var steps = new List<JsonPathStep>();
        while (!AtEnd)
        {
            var c = Current;
            if (c == '.')
            {
                steps.Add(ReadDotStep());
            }
            else if (c == '[')
            {
                steps.Add(ReadBracketStep());
            }
            else if (char.IsWhiteSpace(c) || c is '(' or ')' or '&' or '|' or '!' or '~' or '=')
            {
                break;
            }
            else
            {
                throw Fail($"unexpected '{c}' in JSON path at position {_pos}", _pos, 1);
            }
        }

        var afterPath = _pos;
        SkipWhitespace();
        var opPosition = _pos;
        if (TryConsume("=="))
        {
            return new JsonNode(new JsonQuery([.. steps], JsonTest.Equal, ReadJsonLiteral("=="), null));
        }

        if (TryConsume("!="))
        {
            return new JsonNode(new JsonQuery([.. steps], JsonTest.NotEqual, ReadJsonLiteral("!="), null));
        }

        if (TryConsume("~="))
        {
            SkipWhitespace();
            var regex = CompileRegex(ReadValue("~json expects a regex after '~='"), "~json ~=", RegexOptions.None);
            return new JsonNode(new JsonQuery([.. steps], JsonTest.Regex, null, regex));
        }

        if (!AtEnd && Current is '=' or '<' or '>')
        {
            throw Fail($"~json compares with ==, != or ~= only, at position {opPosition}", opPosition, 1);
        }

        _pos = afterPath;
        return new JsonNode(new JsonQuery([.. steps], JsonTest.Exists, null, null));
    }

    private JsonPathStep ReadDotStep()
    {
        var dot = _pos++;
        if (!AtEnd && Current == '*')
        {
            _pos++;
            return new JsonPathStep(JsonStepKind.Wildcard);
        }

        var start = _pos;
        while (!AtEnd && !char.IsWhiteSpace(Current) && Current is not ('.' or '[' or ']' or '(' or ')' or '&' or '|' or '!' or '~' or '=' or '<' or '>' or '"' or '\'' or '*'))
        {
            _pos++;
        }

        if (_pos == start)
        {
            throw Fail($"expected a property name after '.' at position {dot}", dot, 1);
        }

        return new JsonPathStep(JsonStepKind.Property, Encoding.UTF8.GetBytes(_text[start.._pos]));
    }

    private JsonPathStep ReadBracketStep()
    {
        var open = _pos++;
        JsonPathStep step;
        if (AtEnd)
        {
            throw Fail($"missing ']' opened at position {open}", open, 1);
        }

        var c = Current;
        if (c == '*')
        {
            _pos++;
            step = new JsonPathStep(JsonStepKind.Wildcard);
        }
        else if (c is '"' or '\'')
        {
            step = new JsonPathStep(JsonStepKind.Property, Encoding.UTF8.GetBytes(ReadJsonString()));
        }
        else if (char.IsAsciiDigit(c))
        {
            var start = _pos;
            while (!AtEnd && char.IsAsciiDigit(Current))
            {
                _pos++;
            }

            if (!int.TryParse(_text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                throw Fail($"array index too large at position {start}", start, _pos - start);
            }

            step = new JsonPathStep(JsonStepKind.Index, Index: index);
        }
        else
        {
            throw Fail($"expected a quoted name, an index or '*' after '[' at position {_pos}", _pos, 1);
        }

        if (AtEnd || Current != ']')
        {
            throw Fail($"missing ']' opened at position {open}", open, 1);
        }

        _pos++;
        return step;
    }

    /// <summary>A JSON value after == or !=; an unquoted word that is no JSON literal is taken as a string.</summary>
    private JsonLiteral ReadJsonLiteral(string op)
    {
        SkipWhitespace();
        var expectation = $"~json expects a JSON value after '{op}'";
        if (!AtEnd && Current is '"' or '\'')
        {
            return new JsonLiteral(JsonLiteralKind.String, Encoding.UTF8.GetBytes(ReadJsonString()));
        }

        var token = ReadValue(expectation);
        return token.Text switch
        {
            "true" => new JsonLiteral(JsonLiteralKind.True),
            "false" => new JsonLiteral(JsonLiteralKind.False),
            "null" => new JsonLiteral(JsonLiteralKind.Null),
            _ when double.TryParse(token.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number) =>
                new JsonLiteral(JsonLiteralKind.Number, Number: number),
            _ => new JsonLiteral(JsonLiteralKind.String, Encoding.UTF8.GetBytes(token.Text)),
        };
    }

    /// <summary>A string in double or single quotes with JSON escapes (plus <c>\'</c>).</summary>
    private string ReadJsonString()
    {
        var start = _pos;
        var quote = _text[_pos++];
        var value = new StringBuilder();
        while (true)
        {
            if (AtEnd)
            {
                throw Fail($"unterminated string starting at position {start}", start, _pos - start);
            }

            var c = _text[_pos];
            if (c == quote)
            {
                _pos++;
                return value.ToString();
            }

            if (c != '\\')
            {
                value.Append(c);
                _pos++;
                continue;
            }

            if (_pos + 1 >= _text.Length)
            {
                throw Fail($"unterminated string starting at position {start}", start, _pos + 1 - start);
            }

            var escape = _text[_pos + 1];
            switch (escape)
            {
                case '"' or '\'' or '\\' or '/': value.Append(escape); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'n': value.Append('\n'); break;
                case 'r': value.Append('\r'); break;
                case 't': value.Append('\t'); break;
                case 'u' when _pos + 6 <= _text.Length
                    && ushort.TryParse(_text.AsSpan(_pos + 2, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code):
                    value.Append((char)code);
                    _pos += 4;
                    break;
                default:
                    throw Fail($"invalid escape '\\{escape}' in string at position {_pos}", _pos, 2);
            }

            _pos += 2;
        }
    }

    private bool TryConsume(string symbol)
    {
        if (string.CompareOrdinal(_text, _pos, symbol, 0, symbol.Length) == 0)
        {
            _pos += symbol.Length;
            return true;
        }

        return false;
    }

    private bool AtWordBoundary() => AtEnd || IsWordBoundary(Current);

    /// <summary>Length of the unusable word starting at <paramref name="start"/>, for highlighting.</summary>
    private int ExtentOfJunk(int start)
    {
        var end = start;
        while (end < _text.Length && !IsWordBoundary(_text[end]))
        {
            end++;
        }

        return end - start;
    }

    private void SkipWhitespace()
    {
        while (!AtEnd && char.IsWhiteSpace(Current))
        {
            _pos++;
        }
    }
}
