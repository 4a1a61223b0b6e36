using System.Text;
using System.Text.Json.Nodes;
using WsWeb.Core.Formats;

namespace WsWeb.Core.Tests.Formats;

/// <summary>
/// Every format refuses what the rest of WsWeb cannot handle: flow ids the REST routes cannot address,
/// message indices past JavaScript's safe integer, close codes a close frame cannot carry, replays of neither side.
/// </summary>
public class ImportChecksTests
{
    private static string ImportFails(byte[] data, FlowFormat format)
    {
        var e = Record.Exception(() => RoundTripTests.Import(data, format));
        Assert.True(e is FlowFormatException, $"expected a FlowFormatException, got {e}");
        return e.Message;
    }

    private static byte[] Har(Action<JsonObject> change)
    {
        var har = JsonNode.Parse(RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Har))!.AsObject();
        change(har["log"]!["entries"]![0]!.AsObject());
        return Encoding.UTF8.GetBytes(har.ToJsonString());
    }

    private static byte[] Mitmproxy(Action<TnetDict> change)
    {
        var state = MitmproxyFlowFormat.ToState(SampleFlows.WebSocket(withCertificate: false));
        change(state);
        return Tnetstring.Serialize(state);
    }

    private static byte[] Json(Action<JsonObject> change)
    {
        var json = JsonNode.Parse(RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Json))!.AsObject();
        change(json["flows"]![0]!.AsObject());
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    private static TnetDict Extras(TnetDict state) => (TnetDict)((TnetDict)state["metadata"]!)["wsweb"]!;

    [Theory]
    [InlineData("", "must not be empty")]
    [InlineData("export", "is a route of its own")]
    [InlineData("Import", "is a route of its own")]
    [InlineData("a/b", "only A-Z")]
    [InlineData("a%2Fb", "only A-Z")]
    [InlineData("a?b", "only A-Z")]
    [InlineData("..", "dot-segment")]
    [InlineData(".", "dot-segment")]
    public void Ids_the_routes_cannot_address_are_refused_in_every_format(string id, string expected)
    {
        var har = ImportFails(Har(entry => entry["_wsweb"]!["id"] = id), FlowFormat.Har);
        Assert.StartsWith("$.log.entries[0]._wsweb.id: ", har, StringComparison.Ordinal);
        Assert.Contains(expected, har, StringComparison.Ordinal);

        var mitm = ImportFails(Mitmproxy(state => state.Set("id", TnetValue.From(id))), FlowFormat.Mitmproxy);
        Assert.StartsWith("mitmproxy flow 1 (byte 0): id: ", mitm, StringComparison.Ordinal);
        Assert.Contains(expected, mitm, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Request")]
    [InlineData("client")]
    [InlineData("true")]
    public void A_replay_that_is_neither_of_a_request_nor_of_a_response_is_refused_in_every_format(string isReplay)
    {
        // ~replayq and ~replays tell the two apart; anything else would be a replay of neither side.
        var expected = $"\"{isReplay}\" is neither \"request\" (a replayed request) nor \"response\" (a replayed response)";

        var json = ImportFails(Json(flow => flow["isReplay"] = isReplay), FlowFormat.Json);
        Assert.StartsWith($"$.flows[0].isReplay: {expected}", json, StringComparison.Ordinal);

        var har = ImportFails(Har(entry => entry["_wsweb"]!["isReplay"] = isReplay), FlowFormat.Har);
        Assert.StartsWith($"$.log.entries[0]._wsweb.isReplay: {expected}", har, StringComparison.Ordinal);

        var mitm = ImportFails(Mitmproxy(state => state.Set("is_replay", TnetValue.From(isReplay))), FlowFormat.Mitmproxy);
        Assert.StartsWith($"mitmproxy flow 1 (byte 0): is_replay: {expected}", mitm, StringComparison.Ordinal);
    }

    [Fact]
    public void A_replay_that_is_not_a_string_is_refused_in_every_format()
    {
        Assert.Equal(
            "$.flows[0].isReplay: expected a string, found a boolean",
            ImportFails(Json(flow => flow["isReplay"] = true), FlowFormat.Json));
        Assert.Equal(
            "$.log.entries[0]._wsweb.isReplay: expected a string, found a number",
            ImportFails(Har(entry => entry["_wsweb"]!["isReplay"] = 1), FlowFormat.Har));
        Assert.Matches(
            @"^mitmproxy flow 1 \(byte 0\): is_replay \(byte \d+\) is a bool, expected a string$",
            ImportFails(Mitmproxy(state => state.Set("is_replay", TnetBool.True)), FlowFormat.Mitmproxy));
    }

    [Theory]
    [InlineData("", "must not be empty")]
    [InlineData("export", "is a route of its own")]
    [InlineData("a/b", "only A-Z")]
    [InlineData("..", "dot-segment")]
    public void A_replayed_flow_id_the_routes_cannot_address_is_refused_in_every_format(string id, string expected)
    {
        var json = ImportFails(Json(flow => flow["replayOf"] = id), FlowFormat.Json);
        Assert.StartsWith("$.flows[0].replayOf: ", json, StringComparison.Ordinal);
        Assert.Contains(expected, json, StringComparison.Ordinal);

        var har = ImportFails(Har(entry => entry["_wsweb"]!["replayOf"] = id), FlowFormat.Har);
        Assert.StartsWith("$.log.entries[0]._wsweb.replayOf: ", har, StringComparison.Ordinal);
        Assert.Contains(expected, har, StringComparison.Ordinal);

        var mitm = ImportFails(Mitmproxy(state => Extras(state).Set("replay_of", TnetValue.From(id))), FlowFormat.Mitmproxy);
        Assert.StartsWith("mitmproxy flow 1 (byte 0): metadata.wsweb.replay_of: ", mitm, StringComparison.Ordinal);
        Assert.Contains(expected, mitm, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NaN)]
    [InlineData(-1e20)]
    [InlineData(1e300)]
    public void Times_no_date_can_hold_are_refused_in_every_format(double bad)
    {
        // One such flow would break every HAR export that includes it, and the dashboard's pages.
        var mitm = ImportFails(Mitmproxy(state => ((TnetDict)state["request"]!).Set("timestamp_start", new TnetFloat(bad))), FlowFormat.Mitmproxy);
        Assert.StartsWith("mitmproxy flow 1 (byte 0): request.timestamp_start", mitm, StringComparison.Ordinal);
        Assert.Contains("is not a usable time", mitm, StringComparison.Ordinal);

        if (double.IsFinite(bad))
        {
            var har = ImportFails(Har(entry => entry["_webSocketMessages"]![0]!["time"] = bad), FlowFormat.Har);
            Assert.StartsWith("$.log.entries[0]._webSocketMessages[0].time: ", har, StringComparison.Ordinal);

            var json = JsonNode.Parse(RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Json))!.AsObject();
            json["flows"]![0]!["request"]!["timestampStart"] = bad;
            var error = ImportFails(Encoding.UTF8.GetBytes(json.ToJsonString()), FlowFormat.Json);
            Assert.StartsWith("$.flows[0].request.timestampStart: ", error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_HAR_date_past_the_year_2286_is_refused()
    {
        var har = ImportFails(Har(entry => entry["startedDateTime"] = "9999-12-31T23:59:59Z"), FlowFormat.Har);

        Assert.StartsWith("$.log.entries[0].startedDateTime: ", har, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_id_is_refused_and_a_guid_or_an_url_safe_name_is_kept()
    {
        var tooLong = new string('a', ImportChecks.MaxIdLength + 1);
        Assert.Contains("at most 128", ImportFails(Mitmproxy(state => state.Set("id", TnetValue.From(tooLong))), FlowFormat.Mitmproxy), StringComparison.Ordinal);

        foreach (var id in new[] { Guid.NewGuid().ToString(), "capture-1.a_b~C", new string('a', ImportChecks.MaxIdLength) })
        {
            Assert.Equal(id, Assert.Single(RoundTripTests.Import(Mitmproxy(state => state.Set("id", TnetValue.From(id))), FlowFormat.Mitmproxy).Flows).Id);
            Assert.Equal(id, Assert.Single(RoundTripTests.Import(Har(entry => entry["_wsweb"]!["id"] = id), FlowFormat.Har).Flows).Id);
        }
    }

    [Fact]
    public void A_trimmed_count_that_puts_indices_past_2_to_the_53_is_refused_in_every_format()
    {
        // trimmed + the sample's messages must stay within 2^53-1.
        var fits = ImportChecks.MaxIndex - SampleFlows.WebSocket(withCertificate: false).WebSocket!.Messages.Count;
        var har = ImportFails(Har(entry => entry["_wsweb"]!["webSocket"]!["trimmedCount"] = fits + 1), FlowFormat.Har);
        Assert.StartsWith("$.log.entries[0]._wsweb.webSocket.trimmedCount: ", har, StringComparison.Ordinal);
        har = ImportFails(Har(entry => entry["_wsweb"]!["webSocket"]!["trimmedCount"] = long.MaxValue), FlowFormat.Har);
        Assert.StartsWith("$.log.entries[0]._wsweb.webSocket.trimmedCount: ", har, StringComparison.Ordinal);

        var mitm = ImportFails(Mitmproxy(state => Extras(state).Set("messages_trimmed", new TnetInt(long.MaxValue))), FlowFormat.Mitmproxy);
        Assert.StartsWith("mitmproxy flow 1 (byte 0): metadata.wsweb.messages_trimmed: ", mitm, StringComparison.Ordinal);
        mitm = ImportFails(Mitmproxy(state => Extras(state).Set("messages_trimmed", new TnetInt(fits + 1))), FlowFormat.Mitmproxy);
        Assert.StartsWith("mitmproxy flow 1 (byte 0): metadata.wsweb.messages_trimmed: ", mitm, StringComparison.Ordinal);

        var lastFromHar = Assert.Single(RoundTripTests.Import(Har(entry => entry["_wsweb"]!["webSocket"]!["trimmedCount"] = fits), FlowFormat.Har).Flows).WebSocket!;
        Assert.Equal(ImportChecks.MaxIndex - 1, lastFromHar.Messages[^1].Index);
        var lastFromMitm = Assert.Single(RoundTripTests.Import(Mitmproxy(state => Extras(state).Set("messages_trimmed", new TnetInt(fits))), FlowFormat.Mitmproxy).Flows).WebSocket!;
        Assert.Equal(ImportChecks.MaxIndex - 1, lastFromMitm.Messages[^1].Index);
    }

    [Theory]
    [InlineData(70000)]
    [InlineData(-1)]
    public void A_close_code_outside_two_bytes_is_refused_in_every_format(long code)
    {
        var har = ImportFails(Har(entry => entry["_wsweb"]!["webSocket"]!["closeCode"] = code), FlowFormat.Har);
        Assert.StartsWith("$.log.entries[0]._wsweb.webSocket.closeCode: ", har, StringComparison.Ordinal);

        var mitm = ImportFails(Mitmproxy(state => ((TnetDict)state["websocket"]!).Set("close_code", new TnetInt(code))), FlowFormat.Mitmproxy);
        Assert.StartsWith("mitmproxy flow 1 (byte 0): websocket.close_code: ", mitm, StringComparison.Ordinal);

        var json = Encoding.UTF8.GetString(RoundTripTests.Export([SampleFlows.WebSocket(withCertificate: false)], FlowFormat.Json));
        var node = JsonNode.Parse(json)!;
        node["flows"]![0]!["webSocket"]!["closeCode"] = code;
        Assert.StartsWith("$.flows[0].webSocket.closeCode: ", ImportFails(Encoding.UTF8.GetBytes(node.ToJsonString()), FlowFormat.Json), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1005)]
    [InlineData(65535)]
    public void Close_codes_within_two_bytes_are_kept(int code)
    {
        var flow = Assert.Single(RoundTripTests.Import(Mitmproxy(state => ((TnetDict)state["websocket"]!).Set("close_code", new TnetInt(code))), FlowFormat.Mitmproxy).Flows);
        Assert.Equal(code, flow.WebSocket!.CloseCode);
    }
}
