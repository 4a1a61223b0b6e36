using System.Text;
using System.Text.RegularExpressions;
using WsWeb.Rules;

namespace WsWeb.Tests.Rules;

/// <summary>
/// A replace result is built no larger than the maximum message size: a short rule on a modest message could ask
/// for gigabytes ("(a)" to "$1" and 16 KB more, on 40 KB of "a", is 655 MB of UTF-8), which the proxy built whole
/// before finding it could not send it.
/// </summary>
public sealed class ReplacementTemplateLimitTests
{
    private const int Limit = 1024 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static Regex Regex(string pattern, int timeoutMs = 250) =>
        new(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(timeoutMs));

    [Theory]
    [InlineData("group in a long replacement, on every char")]
    [InlineData("literal, on every char")]
    [InlineData("one match, one group many times")]
    [InlineData("the whole text on every match")]
    public void A_text_result_past_the_limit_is_given_up_having_taken_about_the_limit_in_memory(string example)
    {
        var (pattern, replacement, text) = example switch
        {
            "group in a long replacement, on every char" => ("(a)", "$1" + new string('b', 16_382), new string('a', 40_000)),
            "literal, on every char" => ("a", new string('b', 16_384), new string('a', 70_000)),
            "one match, one group many times" => ("(a+)", string.Concat(Enumerable.Repeat("$1", 8_192)), new string('a', 40_000)),
            _ => ("a", "$_", new string('a', 40_000)),
        };
        var regex = Regex(pattern);
        var template = ReplacementTemplate.Parse(regex, replacement);

        // Warm up whatever is allocated once (the regex's runner, JIT), so that only the replace itself is measured.
        template.TryReplace(regex, "a", Limit, out _);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var fits = template.TryReplace(regex, text, Limit, out var result);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(fits);
        Assert.Null(result);

        // The text under construction is UTF-16, at most the limit in chars: 2 bytes a char, and a little for the
        // matches. Built whole, these results are 0.6 to 3 GB.
        Assert.True(allocated < 3L * Limit, $"{allocated} bytes allocated");
    }

    [Theory]
    [InlineData("(é)", "$1$1", "xéyé")]
    [InlineData("(\\uD83D)", "$1", "😀😀")]
    [InlineData("\\uD83D", "$&", "a😀b")]
    [InlineData("€", "$&$`", "a€b€")]
    [InlineData("(?<w>\\w+)", "<${w}>$$", "ab cd é")]
    [InlineData("x*", "-", "abc")]
    [InlineData("b", "é", "abcb")]
    [InlineData("(?=(a+))", "[$1]", "aaa")]
    public void A_result_of_exactly_the_limit_is_made_as_regex_replace_makes_it_and_one_byte_less_is_refused(string pattern, string replacement, string text)
    {
        var regex = Regex(pattern);
        var template = ReplacementTemplate.Parse(regex, replacement);
        var expected = StrictUtf8.GetBytes(regex.Replace(text, replacement));

        // At these limits it is built piece by piece (each char counted in UTF-8, a surrogate pair split between a
        // match and the text after it counted once), rather than by Regex.Replace.
        Assert.True(template.MostBytes(text.Length) > expected.Length);

        Assert.True(template.TryReplace(regex, text, expected.Length, out var result));
        Assert.Equal(expected, result);
        Assert.False(template.TryReplace(regex, text, expected.Length - 1, out result));
        Assert.Null(result);
    }

    [Theory]
    [InlineData("(a)(b)?", "$1|$2|$3|$10|${1}|${2|${1|$|$$1|$$$1|$ 1")]
    [InlineData("(?<5>a)(b)(?<n>c)?", "$5$2$1$+|${n}|${5}|${+1}|${n |${}|${")]
    [InlineData("(?<name>a)(?<x٣>b)?", "${name}${x٣}${Name}${1}${2}$name")]
    [InlineData("a|(b)", "$&-$`-$'-$_-$+-$-$*")]
    [InlineData("(?n)(a)(?<k>b)?", "$1$k${k}$0$+")]
    [InlineData("", "[$`]")]
    [InlineData("(x)?", "<$1>")]
    public void Every_form_of_the_replacement_means_what_it_means_to_regex_replace(string pattern, string replacement)
    {
        const string Text = "xab cab é a€b";
        var regex = Regex(pattern);
        var template = ReplacementTemplate.Parse(regex, replacement);
        var expected = regex.Replace(Text, replacement);
        var expectedBytes = StrictUtf8.GetBytes(expected);

        // Both ways: all at once when nothing could be too large, piece by piece when the limit is near.
        Assert.True(template.TryReplace(regex, Text, int.MaxValue, out var whole));
        Assert.True(template.TryReplace(regex, Text, expectedBytes.Length, out var pieces));
        Assert.True(template.MostBytes(Text.Length) > expectedBytes.Length);
        Assert.Equal(expected, StrictUtf8.GetString(whole!));
        Assert.Equal(expected, StrictUtf8.GetString(pieces!));
    }

    [Fact]
    public void Nothing_matched_gives_no_new_bytes_either_way()
    {
        var regex = Regex("(z)");
        var template = ReplacementTemplate.Parse(regex, "$1$1");
        Assert.True(template.TryReplace(regex, "abc", int.MaxValue, out var result));
        Assert.Null(result);
        Assert.True(template.MostBytes(3) > 3);
        Assert.True(template.TryReplace(regex, "abc", 3, out result));
        Assert.Null(result);
    }

    [Fact]
    public void A_group_number_past_int_max_value_is_refused_as_regex_replace_refuses_it()
    {
        var regex = Regex("(a)");
        Assert.ThrowsAny<ArgumentException>(() => regex.Replace("xyz", "$99999999999"));
        var template = ReplacementTemplate.Parse(regex, "$99999999999");
        Assert.ThrowsAny<ArgumentException>(() => template.TryReplace(regex, "xyz", int.MaxValue, out _));

        // Behind $$ the digits are text, to both.
        var escaped = ReplacementTemplate.Parse(regex, "$$99999999999");
        Assert.True(escaped.TryReplace(regex, "a", "$99999999999".Length, out var result));
        Assert.Equal(regex.Replace("a", "$$99999999999"), StrictUtf8.GetString(result!));
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(8)]
    public void A_result_that_splits_a_character_is_refused_either_way(int limit)
    {
        // .NET regexes see UTF-16: "(.)" takes each half of the emoji on its own.
        var regex = Regex("(.)");
        var template = ReplacementTemplate.Parse(regex, "$1 ");
        Assert.Throws<EncoderFallbackException>(() => template.TryReplace(regex, "😀", limit, out _));
    }

    [Fact]
    public void Matching_piece_by_piece_times_out_when_all_of_it_takes_longer_than_the_regex_timeout()
    {
        // Each "aaaaaaaaaaaaaa!X" takes the backtracking pattern a few milliseconds, far from the 100 ms each match may
        // take, but 500 of them take seconds: Regex.Replace counts its timeout over all matches, and so must this.
        var regex = Regex("(a+)+b|X", timeoutMs: 100);
        var template = ReplacementTemplate.Parse(regex, "Y");
        var text = string.Concat(Enumerable.Repeat(new string('a', 14) + "!X", 500));
        Assert.True(template.MostBytes(text.Length) > 2 * text.Length);

        var started = Environment.TickCount64;
        Assert.Throws<RegexMatchTimeoutException>(() => template.TryReplace(regex, text, 2 * text.Length, out _));
        Assert.True(Environment.TickCount64 - started < 5_000, "it stopped near the timeout rather than after all matches");
    }

    [Fact]
    public void A_binary_result_past_the_limit_is_refused_before_any_of_it_is_built()
    {
        var content = Enumerable.Repeat((byte)0xca, 200).ToArray();
        var replacement = new byte[8_192];
        RulesAddon.TryReplaceBytes(content, [0xca], [0], Limit, out _);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var fits = RulesAddon.TryReplaceBytes(content, [0xca], replacement, Limit, out var result);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(fits);
        Assert.Null(result);
        Assert.True(allocated < 1024, $"{allocated} bytes allocated");
    }

    [Fact]
    public void A_binary_result_of_exactly_the_limit_is_made_and_one_byte_less_is_refused()
    {
        byte[] content = [1, 0xca, 0xfe, 2, 0xca, 0xfe, 0xca];
        byte[] expected = [1, 0xbe, 0xef, 0, 2, 0xbe, 0xef, 0, 0xca];

        Assert.True(RulesAddon.TryReplaceBytes(content, [0xca, 0xfe], [0xbe, 0xef, 0], expected.Length, out var result));
        Assert.Equal(expected, result);
        Assert.False(RulesAddon.TryReplaceBytes(content, [0xca, 0xfe], [0xbe, 0xef, 0], expected.Length - 1, out result));
        Assert.Null(result);

        // Occurrences do not overlap, as before: "01 01 01" has one "01 01" and a "01" left over.
        Assert.True(RulesAddon.TryReplaceBytes([1, 1, 1], [1, 1], [9], 3, out result));
        Assert.Equal(new byte[] { 9, 1 }, result);
        Assert.True(RulesAddon.TryReplaceBytes([1, 2], [3], [4, 4, 4, 4], 2, out result));
        Assert.Null(result);
    }
}
