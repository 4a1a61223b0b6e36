using System.Diagnostics;
using System.Text;
using WsWeb.Core.Formats;

namespace WsWeb.Core.Tests.Formats;

public class TnetstringTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData("0:~", typeof(TnetNull))]
    [InlineData("4:true!", typeof(TnetBool))]
    [InlineData("5:false!", typeof(TnetBool))]
    [InlineData("5:12345#", typeof(TnetInt))]
    [InlineData("2:-7#", typeof(TnetInt))]
    [InlineData("19:9223372036854775807#", typeof(TnetInt))]
    [InlineData("3:1.5^", typeof(TnetFloat))]
    [InlineData("11:hello world,", typeof(TnetBytes))]
    [InlineData("0:,", typeof(TnetBytes))]
    [InlineData("6:h\u00e9llo;", typeof(TnetString))]
    [InlineData("0:]", typeof(TnetList))]
    [InlineData("19:5:12345#4:true!1:0#]", typeof(TnetList))]
    [InlineData("0:}", typeof(TnetDict))]
    [InlineData("19:1:a;5:12345#1:b;0:~}", typeof(TnetDict))]
    public void Parses_and_writes_back_identically(string text, Type expectedType)
    {
        var bytes = B(text);
        var value = Tnetstring.Parse(bytes);
        Assert.IsType(expectedType, value);
        Assert.Equal(0, value.Offset);
        Assert.Equal(text, Encoding.UTF8.GetString(Tnetstring.Serialize(value)));
    }

    [Fact]
    public void Round_trips_a_nested_structure_with_every_type()
    {
        var value = new TnetDict()
            .Set("bytes", new TnetBytes([0, 1, 0xFF, 0x80, (byte)':', (byte)',']))
            .Set("str", new TnetString("héllo, wörld ✓ 🎉"))
            .Set("int", new TnetInt(long.MinValue))
            .Set("float", new TnetFloat(1700000000.123456))
            .Set("true", TnetBool.True)
            .Set("false", TnetBool.False)
            .Set("null", TnetNull.Instance)
            .Set("list", TnetList.Of(new TnetInt(1), TnetList.Of(new TnetString("")), new TnetDict()));

        var bytes = Tnetstring.Serialize(value);
        var back = Assert.IsType<TnetDict>(Tnetstring.Parse(bytes));

        Assert.Equal(value.Entries.Select(e => e.Key), back.Entries.Select(e => e.Key));
        Assert.Equal(new byte[] { 0, 1, 0xFF, 0x80, (byte)':', (byte)',' }, Assert.IsType<TnetBytes>(back["bytes"]).Value);
        Assert.Equal("héllo, wörld ✓ 🎉", Assert.IsType<TnetString>(back["str"]).Value);
        Assert.Equal(long.MinValue, Assert.IsType<TnetInt>(back["int"]).Value);
        Assert.Equal(1700000000.123456, Assert.IsType<TnetFloat>(back["float"]).Value);
        Assert.True(Assert.IsType<TnetBool>(back["true"]).Value);
        Assert.False(Assert.IsType<TnetBool>(back["false"]).Value);
        Assert.IsType<TnetNull>(back["null"]);
        var list = Assert.IsType<TnetList>(back["list"]);
        Assert.Equal(3, list.Items.Count);
        Assert.Equal(bytes, Tnetstring.Serialize(back));
    }

    [Fact]
    public void Offsets_point_at_each_value()
    {
        var value = Assert.IsType<TnetList>(Tnetstring.Parse(B("12:1:a,5:hello;]")));
        Assert.Equal(3, value.Items[0].Offset);
        Assert.Equal(7, value.Items[1].Offset);
    }

    [Theory]
    [InlineData(0.0, "0.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(1.0, "1.0")]
    [InlineData(1.5, "1.5")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(9999999999999998.0, "9999999999999998.0")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(0.00001, "1e-05")]
    [InlineData(1.5e-7, "1.5e-07")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1700000000.123456, "1700000000.123456")]
    [InlineData(123456789012.5, "123456789012.5")]
    [InlineData(double.PositiveInfinity, "inf")]
    [InlineData(double.NegativeInfinity, "-inf")]
    [InlineData(double.NaN, "nan")]
    public void Floats_are_written_as_python_repr(double value, string expected)
    {
        Assert.Equal(expected, PythonFloat.Repr(value));
        var parsed = Assert.IsType<TnetFloat>(Tnetstring.Parse(Tnetstring.Serialize(new TnetFloat(value)))).Value;
        Assert.Equal(value, parsed);
    }

    [Fact]
    public void Reads_values_back_to_back_from_a_stream()
    {
        using var stream = new MemoryStream(B("1:a,0:~4:true!"));
        var values = new List<TnetValue>();
        long offset = 0;
        while (Tnetstring.ReadFrom(stream, null, offset) is { } v)
        {
            values.Add(v);
            offset = stream.Position;
        }

        Assert.Collection(values, v => Assert.IsType<TnetBytes>(v), v => Assert.IsType<TnetNull>(v), v => Assert.IsType<TnetBool>(v));
    }

    [Theory]
    [InlineData("", "truncated", 0)]
    [InlineData("5", "truncated", 0)]
    [InlineData("5:abc,", "truncated", 0)]
    [InlineData("5:hello", "truncated", 0)]
    [InlineData(":abc,", "bad tnetstring length at byte 0", 0)]
    [InlineData("x:abc,", "bad tnetstring length at byte 0", 0)]
    [InlineData("-1:,", "bad tnetstring length at byte 0", 0)]
    [InlineData("05:hello,", "leading zero", 0)]
    [InlineData("00:,", "leading zero", 0)]
    [InlineData("1234567890123:x,", "more than 12 digits", 0)]
    [InlineData("3 :abc,", "bad tnetstring length at byte 0", 0)]
    [InlineData("5:hello?", "unknown type tag '?' at byte 7", 7)]
    [InlineData("3:abc,x", "unexpected data after the tnetstring at byte 6", 6)]
    [InlineData("4:true#", "invalid integer literal", 0)]
    [InlineData("2:1a#", "invalid integer literal", 0)]
    [InlineData("20:99999999999999999999#", "integer out of range", 0)]
    [InlineData("3:abc^", "invalid float literal", 0)]
    [InlineData("4:yes!!", "invalid boolean literal", 0)]
    [InlineData("1:x~", "invalid null literal", 0)]
    [InlineData("7:5:hello]", "truncated", 2)]
    [InlineData("8:1:a,1:b,}", "dictionary key at byte 2 is a bytes", 2)]
    [InlineData("4:1:a;}", "has no value", 6)]
    [InlineData("6:3:abc]", "truncated", 0)]
    [InlineData("8:5:hello?]", "unknown type tag '?' at byte 9", 9)]
    public void Malformed_input_throws_with_the_offset(string text, string expectedMessage, long expectedOffset)
    {
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.Parse(B(text)));
        Assert.Contains(expectedMessage, e.Message, StringComparison.Ordinal);
        Assert.Equal(expectedOffset, e.Offset);
        Assert.IsAssignableFrom<FlowFormatException>(e);
    }

    [Fact]
    public void Invalid_utf8_in_a_str_names_the_byte()
    {
        var bytes = B("5:ab").Concat(new byte[] { 0xC3, 0x28, (byte)'x', (byte)';' }).ToArray();
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.Parse(bytes));
        Assert.Equal("invalid UTF-8 in string at byte 4", e.Message);
        Assert.Equal(4, e.Offset);
    }

    [Theory]
    [InlineData("4294967296:")]
    [InlineData("999999999999:")]
    [InlineData("268435457:abc,")]
    public void Huge_declared_lengths_fail_fast_without_allocating(string text)
    {
        var bytes = B(text);

        // Once untimed, so the timing is of the parse and not of its first call's JIT and first throw (which a busy
        // machine can stretch past a second). What the bound is for, a parser that walks or fills the declared length,
        // is slow on every call.
        Assert.Throws<TnetstringException>(() => Tnetstring.Parse(bytes));
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.Parse(bytes));
        watch.Stop();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.Contains("bad tnetstring length at byte 0", e.Message, StringComparison.Ordinal);
        Assert.True(watch.ElapsedMilliseconds < 1000, $"took {watch.ElapsedMilliseconds} ms");
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_declared_length_within_the_limit_but_beyond_the_input_is_truncation_not_allocation()
    {
        var bytes = B("268435456:abc,");
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.Parse(bytes));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.StartsWith("truncated tnetstring at byte 0", e.Message, StringComparison.Ordinal);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void A_stream_declaring_4_GB_fails_without_allocating()
    {
        using var stream = new MemoryStream(B("4294967296:abc,"));
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.ReadFrom(stream));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore < 64 * 1024);
        Assert.Contains("bad tnetstring length at byte 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stream_shorter_than_its_declared_length_is_truncated_and_buffers_only_what_arrived()
    {
        using var stream = new MemoryStream(B("200000000:abc,"));
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.ReadFrom(stream));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore < 256 * 1024);
        Assert.StartsWith("truncated tnetstring at byte 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_length_limit_is_configurable()
    {
        var options = new TnetstringReaderOptions { MaxLength = 4 };
        Assert.IsType<TnetBytes>(Tnetstring.Parse(B("4:abcd,"), options));
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.Parse(B("5:abcde,"), options));
        Assert.Contains("the limit is 4", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nesting_10000_levels_deep_is_refused_at_the_depth_limit()
    {
        var bytes = Nested(10_000);
        var e = Assert.Throws<TnetstringException>(() => Tnetstring.Parse(bytes));
        Assert.StartsWith("nesting deeper than 64 at byte ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Offset > 0);
    }

    [Fact]
    public void Nesting_up_to_the_limit_is_accepted()
    {
        Assert.IsType<TnetList>(Tnetstring.Parse(Nested(64)));
        Assert.Throws<TnetstringException>(() => Tnetstring.Parse(Nested(65)));
    }

    private static byte[] Nested(int depth)
    {
        var value = "0:]";
        for (var i = 1; i < depth; i++)
        {
            value = $"{Encoding.ASCII.GetByteCount(value)}:{value}]";
        }

        return B(value);
    }
}
