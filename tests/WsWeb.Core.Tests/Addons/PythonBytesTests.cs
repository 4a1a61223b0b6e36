using WsWeb.Core.Addons.Samples;

namespace WsWeb.Core.Tests.Addons;

/// <summary>The seed's "Processing WebSocket Messages" prints <c>repr(message.content)</c>; the expected strings are CPython's.</summary>
public sealed class PythonBytesTests
{
    [Theory]
    [InlineData("", "b''")]
    [InlineData("hello", "b'hello'")]
    [InlineData("it's", "b\"it's\"")]
    [InlineData("say \"hi\"", "b'say \"hi\"'")]
    [InlineData("both ' and \"", "b'both \\' and \"'")]
    [InlineData("tab\there\r\n\\", "b'tab\\there\\r\\n\\\\'")]
    public void Repr_matches_CPython(string content, string expected) =>
        Assert.Equal(expected, PythonBytes.Repr(System.Text.Encoding.Latin1.GetBytes(content)));

    [Fact]
    public void Repr_writes_other_bytes_as_hex_escapes() =>
        Assert.Equal("b'\\x00\\xff\\x7f'", PythonBytes.Repr([0x00, 0xFF, 0x7F]));
}
