using WsWeb.Core.Filters;

namespace WsWeb.Core.Tests.Filters;

public class FlowFilterParseTests
{
    [Theory]
    [InlineData("", 0, "empty filter expression")]
    [InlineData("   ", 0, "empty filter expression")]
    [InlineData("~", 0, "missing operator name after '~' at position 0")]
    [InlineData("~ q", 0, "missing operator name after '~' at position 0")]
    [InlineData("~zz", 0, "unknown operator '~zz' at position 0")]
    [InlineData("~q ~zz", 3, "unknown operator '~zz' at position 3")]
    [InlineData("~c200", 0, "unknown operator '~c200' at position 0")]
    [InlineData("~replayed", 0, "unknown operator '~replayed' at position 0")]
    [InlineData("(~q", 0, "missing ')' opened at position 0")]
    [InlineData("((~q)", 0, "missing ')' opened at position 0")]
    [InlineData("(~q (~s)", 0, "missing ')' opened at position 0")]
    [InlineData("foo(", 3, "missing ')' opened at position 3")]
    [InlineData("~q)", 2, "unexpected ')' at position 2 without a matching '('")]
    [InlineData("(~q))", 4, "unexpected ')' at position 4")]
    [InlineData("()", 0, "empty parentheses at position 0")]
    [InlineData("~c abc", 3, "~c expects a number at position 3")]
    [InlineData("~c", 2, "~c expects a number at position 2")]
    [InlineData("~c 20x", 3, "~c expects a number at position 3")]
    [InlineData("~c 99999999999", 3, "~c expects a number at position 3")]
    [InlineData("~u", 2, "~u expects a regex at position 2")]
    [InlineData("~u (", 3, "~u expects a regex at position 3, found '('")]
    [InlineData("~h )", 3, "~h expects a regex at position 3, found ')'")]
    [InlineData("~u [", 3, "invalid regex for ~u at position 3: ")]
    [InlineData("~b \"a(\"", 3, "invalid regex for ~b at position 3: ")]
    [InlineData("[abc", 0, "invalid regex for ~u at position 0: ")]
    [InlineData("~size >x", 7, "~size expects a byte count")]
    [InlineData("~size", 5, "~size expects a byte count")]
    [InlineData("~size >10q", 7, "~size expects a byte count")]
    [InlineData("~size <= -1", 9, "~size expects a byte count")]
    [InlineData("~json", 5, "~json expects a path starting with '$' at position 5")]
    [InlineData("~json a", 6, "~json expects a path starting with '$' at position 6")]
    [InlineData("~json $.a ==", 12, "~json expects a JSON value after '==' at position 12")]
    [InlineData("~json $.a != (", 13, "~json expects a JSON value after '!=' at position 13, found '('")]
    [InlineData("~json $.", 7, "expected a property name after '.' at position 7")]
    [InlineData("~json $[0", 7, "missing ']' opened at position 7")]
    [InlineData("~json $.a[x]", 10, "expected a quoted name, an index or '*' after '[' at position 10")]
    [InlineData("~json $.a = 1", 10, "~json compares with ==, != or ~= only")]
    [InlineData("~json $.a > 1", 10, "~json compares with ==, != or ~= only")]
    [InlineData("~json $a", 7, "unexpected 'a' in JSON path at position 7")]
    [InlineData("~json $.a == \"x", 13, "unterminated string starting at position 13")]
    [InlineData("~json $.a == \"\\q\"", 14, "invalid escape '\\q' in string at position 14")]
    [InlineData("~json $.a ~= (", 13, "~json expects a regex after '~=' at position 13, found '('")]
    [InlineData("~json $.a ~= \"[\"", 13, "invalid regex for ~json ~= at position 13")]
    [InlineData("~json $.a[99999999999]", 10, "array index too large at position 10")]
    [InlineData("&", 0, "unexpected '&' at position 0: expected a filter term")]
    [InlineData("|", 0, "unexpected '|' at position 0: expected a filter term")]
    [InlineData(")", 0, "unexpected ')' at position 0: expected a filter term")]
    [InlineData("~q &", 3, "unexpected end of expression after '&' at position 3")]
    [InlineData("~q &   ", 3, "unexpected end of expression after '&' at position 3")]
    [InlineData("~q |", 3, "unexpected end of expression after '|' at position 3")]
    [InlineData("~q & | ~s", 5, "unexpected '|' at position 5: expected a filter term")]
    [InlineData("~q & )", 5, "unexpected ')' at position 5: expected a filter term")]
    [InlineData("!", 0, "unexpected end of expression after '!' at position 0")]
    [InlineData("~q !!", 4, "unexpected end of expression after '!' at position 4")]
    [InlineData("\"abc", 0, "unterminated string starting at position 0")]
    [InlineData("~u 'abc", 3, "unterminated string starting at position 3")]
    [InlineData("~b \"abc\\\"", 3, "unterminated string starting at position 3")]
    public void Parse_rejects_bad_expressions_with_position(string expression, int position, string message)
    {
        var e = Assert.Throws<FilterParseException>(() => FlowFilter.Parse(expression));
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
        Assert.Equal(position, e.Position);
        Assert.Equal(e.Error.Message, e.Message);
        Assert.IsAssignableFrom<FormatException>(e);

        Assert.False(FlowFilter.TryParse(expression, out var filter, out var error));
        Assert.Null(filter);
        Assert.Equal(e.Error, error);
        Assert.InRange(error.Position + error.Length, 0, expression.Length);
    }

    [Theory]
    [InlineData("~zz", 0, 3)]
    [InlineData("~c 20x", 3, 3)]
    [InlineData("~q &", 3, 1)]
    [InlineData("~u", 2, 0)]
    [InlineData("~u [ab", 3, 3)]
    [InlineData("~u \"[ab\"", 3, 5)]
    [InlineData("\"abc", 0, 4)]
    public void Errors_carry_the_span_to_highlight(string expression, int position, int length)
    {
        Assert.False(FlowFilter.TryParse(expression, out _, out var error));
        Assert.Equal((position, length), (error.Position, error.Length));
    }

    [Fact]
    public void Invalid_regex_message_includes_the_regex_engine_reason()
    {
        var e = Assert.Throws<FilterParseException>(() => FlowFilter.Parse("~u [ab"));
        Assert.Contains("[ab", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length > "invalid regex for ~u at position 3: ".Length);
    }

    [Fact]
    public void Deep_nesting_is_rejected_instead_of_overflowing_the_stack()
    {
        // Within the 4096-character bound, which refuses longer expressions before nesting is looked at.
        var deep = new string('(', 2000) + "~q" + new string(')', 2000);
        var e = Assert.Throws<FilterParseException>(() => FlowFilter.Parse(deep));
        Assert.Contains("nested too deeply", e.Message, StringComparison.Ordinal);

        Assert.False(FlowFilter.TryParse(new string('!', 4000) + "~q", out _, out var error));
        Assert.Contains("nested too deeply", error.Message, StringComparison.Ordinal);

        // 50 levels is fine.
        Assert.True(FlowFilter.Parse(new string('(', 50) + "~q" + new string(')', 50)).Matches(TestFlows.Pending()));
    }

    [Fact]
    public void An_expression_longer_than_4096_characters_is_rejected_where_it_passes_the_limit()
    {
        // The review's repro: 20,000 terms, 248,887 characters, which made every relayed message cost 20,000 scans.
        var huge = string.Join(" | ", Enumerable.Range(0, 20_000).Select(i => $"~b zq{i}"));
        Assert.False(FlowFilter.TryParse(huge, out _, out var error));
        Assert.Equal($"expression too long at position 4096 ({huge.Length} characters, at most 4096)", error.Message);
        Assert.Equal(4096, error.Position);
        Assert.Equal(huge.Length - 4096, error.Length);
        Assert.Equal(error, Assert.Throws<FilterParseException>(() => FlowFilter.Parse(huge)).Error);

        // Refused before anything else is looked at: the syntax error at its start is not the problem reported.
        Assert.False(FlowFilter.TryParse("~zz " + new string('a', 4093), out _, out error));
        Assert.StartsWith("expression too long at position 4096 (4097 characters", error.Message, StringComparison.Ordinal);

        // Exactly 4096 characters is fine.
        var longest = "~b \"" + new string('a', 4091) + "\"";
        Assert.Equal(4096, longest.Length);
        Assert.True(FlowFilter.Parse(longest).Matches(TestFlows.WebSocket(), TestFlows.Text(new string('a', 5000), fromClient: true)));
    }

    [Theory]
    [InlineData("~b zq{0}", " | ", 1, "~b zq100")]
    [InlineData("~wq", " & ", 1, "~wq")]
    [InlineData("example{0}.com", " | ", 1, "example100.com")]
    [InlineData("!~json $.n{0}", " ", 1, "~json $.n100")]
    [InlineData("(~q | ~d host{0})", " ", 2, "~q")]
    public void More_than_100_terms_are_rejected_at_the_first_term_past_the_limit(string term, string separator, int termsEach, string highlighted)
    {
        // Operators, bare values and terms inside parentheses or after '!' all count.
        var terms = Enumerable.Range(0, 101).Select(i => string.Format(System.Globalization.CultureInfo.InvariantCulture, term, i)).ToList();
        var atLimit = string.Join(separator, terms.Take(100 / termsEach));
        Assert.True(FlowFilter.TryParse(atLimit, out _, out var none), none?.Message);

        var text = string.Join(separator, terms.Take((100 / termsEach) + 1));
        Assert.False(FlowFilter.TryParse(text, out _, out var error));
        var position = text.LastIndexOf(highlighted, StringComparison.Ordinal);
        Assert.Equal(
            $"too many terms at position {position} (more than 100 operators and values); combine alternatives in one regex, e.g. ~b \"a|b\" rather than ~b a | ~b b",
            error.Message);
        Assert.Equal(highlighted, text.Substring(error.Position, error.Length));
    }

    [Fact]
    public void TryParse_treats_null_like_empty_and_never_throws()
    {
        Assert.False(FlowFilter.TryParse(null, out var filter, out var error));
        Assert.Null(filter);
        Assert.Equal("empty filter expression", error.Message);
        Assert.Throws<ArgumentNullException>(() => FlowFilter.Parse(null!));
    }

    [Theory]
    [InlineData("~q")]
    [InlineData("  ~websocket & ~wq  ")]
    [InlineData("~json $.items[*]['name'] ~= \"^B\"")]
    public void Expression_is_kept_verbatim(string expression)
    {
        Assert.True(FlowFilter.TryParse(expression, out var filter, out var error));
        Assert.Null(error);
        Assert.Equal(expression, filter.Expression);
        Assert.Equal(expression, filter.ToString());
    }

    [Theory]
    [InlineData("~all")]
    [InlineData("~http")]
    [InlineData("~tcp")]
    [InlineData("~udp")]
    [InlineData("~dns")]
    [InlineData("~websocket")]
    [InlineData("~q")]
    [InlineData("~s")]
    [InlineData("~e")]
    [InlineData("~marked")]
    [InlineData("~replay")]
    [InlineData("~replayq")]
    [InlineData("~replays")]
    [InlineData("~a")]
    [InlineData("~u x")]
    [InlineData("~d x")]
    [InlineData("~m x")]
    [InlineData("~src x")]
    [InlineData("~dst x")]
    [InlineData("~marker x")]
    [InlineData("~h x")]
    [InlineData("~hq x")]
    [InlineData("~hs x")]
    [InlineData("~t x")]
    [InlineData("~tq x")]
    [InlineData("~ts x")]
    [InlineData("~b x")]
    [InlineData("~bq x")]
    [InlineData("~bs x")]
    [InlineData("~c 200")]
    [InlineData("~wq")]
    [InlineData("~ws")]
    [InlineData("~text")]
    [InlineData("~binary")]
    [InlineData("~injected")]
    [InlineData("~dropped")]
    [InlineData("~edited")]
    [InlineData("~size 0")]
    [InlineData("~size>=4k")]
    [InlineData("~size != 1mb")]
    [InlineData("~json $")]
    [InlineData("~json $.a.b[0][*].*['c d'][\"e\"]")]
    [InlineData("~json $.a==\"x\"")]
    [InlineData("~json $.a != null")]
    [InlineData("~json $.a ~= x")]
    [InlineData("(~q)")]
    [InlineData("~q&~s")]
    [InlineData("~q|~s")]
    [InlineData("~q!~s")]
    [InlineData("!!~q")]
    [InlineData("a|b c")]
    [InlineData("~u \"\"")]
    [InlineData("''")]
    public void Every_operator_and_form_parses(string expression) => FlowFilter.Parse(expression);

    [Fact]
    public void Fuzzed_garbage_only_ever_fails_with_FilterParseException()
    {
        string[] pieces =
        [
            "~", "!", "&", "|", "(", ")", "\"", "'", "\\", " ", "  ", "$", ".", "[", "]", "*", "=", "==", "!=", "~=",
            "<", ">", ">=", "0", "1", "42", "k", "a", "Z", "é", "\t", "x", "-", "+", "?", "{", "}",
            "~q", "~s", "~u ", "~b ", "~h ", "~c ", "~size ", "~json ", "~json $.", "~wq", "~text", "~zz", "~d ", "\\u00",
        ];
        var random = new Random(20240601);
        var flow = TestFlows.WebSocket();
        var http = TestFlows.Http();
        var parsed = 0;
        for (var i = 0; i < 2000; i++)
        {
            var length = random.Next(0, 14);
            var expression = string.Concat(Enumerable.Range(0, length).Select(_ => pieces[random.Next(pieces.Length)]));

            bool tryResult;
            FlowFilter? filter;
            FilterParseError? error;
            try
            {
                tryResult = FlowFilter.TryParse(expression, out filter, out error);
            }
            catch (Exception e)
            {
                Assert.Fail($"TryParse threw {e.GetType().Name} for {expression}: {e.Message}");
                return;
            }

            Exception? thrown = null;
            try
            {
                FlowFilter.Parse(expression);
            }
            catch (Exception e)
            {
                thrown = e;
            }

            if (tryResult)
            {
                Assert.Null(thrown);
                Assert.NotNull(filter);
                parsed++;

                // Whatever parses must also evaluate without throwing, on flows and on messages.
                filter.Matches(http);
                filter.Matches(flow);
                foreach (var message in flow.WebSocket!.Messages)
                {
                    filter.Matches(flow, message);
                }
            }
            else
            {
                Assert.NotNull(error);
                var parseError = Assert.IsType<FilterParseException>(thrown);
                Assert.Equal(error, parseError.Error);
                Assert.InRange(error.Position, 0, expression.Length);
                Assert.InRange(error.Length, 0, expression.Length - error.Position);
                Assert.Contains($"position {error.Position}", error.Message + " position 0", StringComparison.Ordinal);
            }
        }

        // The generator must exercise both outcomes to be worth anything.
        Assert.InRange(parsed, 100, 1900);
    }
}
