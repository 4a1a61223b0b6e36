using System.Text;
using WsWeb.Core.Formats;

namespace WsWeb.Core.Tests.Formats;

/// <summary>
/// A flow file mitmdump was killed while writing ends inside its last record. mitmproxy keeps the flows
/// before it ("Flow file corrupted - loaded N flows."); so do we, with a warning that says where and why.
/// </summary>
public class IncompleteMitmproxyFileTests
{
    private static (byte[] Data, int SecondAt) TwoFlows()
    {
        var first = RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Mitmproxy);
        var second = RoundTripTests.Export([SampleFlows.Post()], FlowFormat.Mitmproxy);
        return ([.. first, .. second], first.Length);
    }

    [Fact]
    public void A_last_record_cut_anywhere_leaves_the_complete_flows_and_a_warning()
    {
        var (data, secondAt) = TwoFlows();
        for (var length = secondAt + 1; length < data.Length; length += Math.Max(1, (length - secondAt) / 20))
        {
            var result = RoundTripTests.Import(data[..length]);

            Assert.Equal(FlowFormat.Mitmproxy, result.Format);
            var flow = Assert.Single(result.Flows);
            Assert.NotNull(flow.WebSocket);
            var warning = Assert.Single(result.Warnings);
            Assert.Contains($"the file ends inside record 2, at byte {length}: truncated tnetstring at byte {secondAt}", warning, StringComparison.Ordinal);
            Assert.Contains("the complete record before it was read", warning, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n\r\n")]
    [InlineData("\0\0\0\0")]
    public void Padding_after_the_last_record_is_ignored_with_a_warning(string padding)
    {
        var (data, _) = TwoFlows();

        var result = RoundTripTests.Import([.. data, .. Encoding.ASCII.GetBytes(padding)]);

        Assert.Equal(2, result.Flows.Count);
        var warning = Assert.Single(result.Warnings);
        Assert.StartsWith($"ignored {padding.Length} byte", warning, StringComparison.Ordinal);
        Assert.Contains($"at byte {data.Length}", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_broken_first_record_is_still_an_error()
    {
        var (data, secondAt) = TwoFlows();

        var e = Assert.ThrowsAny<FlowFormatException>(() => RoundTripTests.Import(data[..(secondAt - 1)], FlowFormat.Mitmproxy));

        Assert.StartsWith("truncated tnetstring at byte 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_complete_record_with_a_cut_inside_is_corrupt_not_cut_short()
    {
        // The second record's own length fits the file, but a value inside it claims more than its parent holds.
        var (data, secondAt) = TwoFlows();
        var text = Encoding.Latin1.GetString(data, secondAt, data.Length - secondAt);
        var at = secondAt + text.IndexOf("4:POST,", StringComparison.Ordinal);
        Assert.True(at > secondAt);
        data[at] = (byte)'9';

        var e = Assert.ThrowsAny<FlowFormatException>(() => RoundTripTests.Import(data));

        Assert.StartsWith($"mitmproxy flow 2 (byte {secondAt}): request.method: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_after_the_last_record_is_still_an_error()
    {
        var (data, _) = TwoFlows();

        var e = Assert.ThrowsAny<FlowFormatException>(() => RoundTripTests.Import([.. data, .. "\nnot a flow"u8]));

        Assert.Contains($"bad tnetstring length at byte {data.Length}", e.Message, StringComparison.Ordinal);
    }
}
