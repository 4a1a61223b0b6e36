using WsWeb.Core.Formats;

namespace WsWeb.Core.Tests.Formats;

public sealed class FlowTextTests
{
    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8080)]
    [InlineData("[::1]:5000", "::1", 5000)]
    [InlineData("[::1]", "::1", 0)]
    [InlineData("::1", "::1", 0)]
    [InlineData("example.com", "example.com", 0)]
    // mitmproxy writes an address whose host is unknown as ("", 0); it must come back as that, not as host ":0".
    [InlineData(":0", "", 0)]
    public void SplitHostPort_reads_what_JoinHostPort_and_mitmproxy_write(string value, string host, int port) =>
        Assert.Equal((host, port), FlowText.SplitHostPort(value));

    [Fact]
    public void SplitHostPort_of_nothing_is_null() => Assert.Null(FlowText.SplitHostPort(""));
}
