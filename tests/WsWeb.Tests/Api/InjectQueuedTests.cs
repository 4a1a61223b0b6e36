using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>
/// An inject answers once its message has gone out, but never waits without end: one still queued after `wait`
/// seconds (behind a held message, or for a peer that is not reading) answers 202 saying what it waits for, and
/// goes out in its turn all the same.
/// </summary>
public sealed class InjectQueuedTests(WsWebApp app) : IClassFixture<WsWebApp>, IAsyncLifetime
{
    public Task InitializeAsync() => app.ResetAndDropHeldAsync();

    public Task DisposeAsync() => app.ResetAsync();

    [Fact]
    public async Task An_injection_behind_a_held_message_answers_202_naming_it_and_goes_out_once_it_is_released()
    {
        await ApiAssert.JsonAsync(await app.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq & ~b hold" }));
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("hold me");
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 1, "the message held");
        var index = flow.WebSocket!.Messages[0].Index;

        var answer = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages?wait=0.2", new { toClient = false, type = "text", content = "behind it" });
        Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
        var queued = await answer.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(queued.GetProperty("queued").GetBoolean());
        Assert.Equal(flow.Id, queued.GetProperty("flowId").GetString());
        Assert.False(queued.GetProperty("toClient").GetBoolean());
        Assert.Equal($"Queued behind held message #{index}: it goes out once that one is released or dropped.", queued.GetProperty("detail").GetString());
        Assert.Empty(server.Received);

        // Nobody waits for it any more; it goes out in its turn all the same, after the message it waited behind.
        await ApiAssert.JsonAsync(await app.Api.PostAsync(new Uri($"/api/intercept/held/{flow.Id}/{index}/release", UriKind.Relative), null));
        await Eventually.AssertAsync(() => server.Texts.SequenceEqual(["hold me", "behind it"]), "both went out, in order");
        Assert.Contains(flow.WebSocket.Messages, m => m.Injected && m.Text == "behind it" && !m.Dropped);
    }

    [Fact]
    public async Task An_injection_behind_a_delayed_message_answers_202_and_goes_out_after_it()
    {
        await ApiAssert.JsonAsync(await app.Api.PostJsonAsync("/api/rules", new { filter = "~wq & ~b slow", action = "delay", delayMs = 3000 }), HttpStatusCode.Created);
        var (client, server, flow) = await app.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("slow one");
        await Eventually.AssertAsync(() => flow.WebSocket!.Messages.Count == 1, "the message recorded");

        var answer = await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages?wait=0", new { toClient = false, type = "text", content = "after it" });
        Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
        var detail = (await answer.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString();
        Assert.StartsWith("Queued: what goes to the server ahead of it has not all gone out", detail, StringComparison.Ordinal);

        await Eventually.AssertAsync(() => server.Texts.SequenceEqual(["slow one", "after it"]), "both went out, in order", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task An_injection_that_goes_out_within_its_wait_answers_201_with_the_recorded_message()
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;

        var message = await ApiAssert.JsonAsync(
            await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages?wait=30", new { toClient = true, type = "text", content = "straight out" }),
            HttpStatusCode.Created);
        Assert.Equal("straight out", message.GetProperty("content").GetString());
        Assert.Equal("straight out", await client.ReceiveTextAsync());
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("301")]
    [InlineData("NaN")]
    public async Task A_wait_out_of_range_is_a_400_naming_wait(string wait)
    {
        var (client, _, flow) = await app.ConnectAsync();
        await using var c = client;

        var message = await ApiAssert.InvalidFieldAsync(
            await app.Api.PostJsonAsync($"/api/flows/{flow.Id}/messages?wait={wait}", new { toClient = true, content = "x" }), "wait");
        Assert.Contains("0 to 300", message, StringComparison.Ordinal);
    }
}
