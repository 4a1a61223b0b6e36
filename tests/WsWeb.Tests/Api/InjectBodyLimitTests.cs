using System.Net;
using System.Net.WebSockets;
using System.Text;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Api;

/// <summary>A host whose maximum message size, in base64, is more than Kestrel's default 30,000,000-byte request body.</summary>
public sealed class LargeMessageWsWebApp : IAsyncLifetime
{
    public const long MaxMessageSize = 24 * 1024 * 1024;

    internal WsWebApp App { get; } = new(options => options with { MaxMessageSize = MaxMessageSize });

    public Task InitializeAsync() => App.InitializeAsync();

    public Task DisposeAsync() => App.DisposeAsync();
}

public sealed class InjectBodyLimitTests(LargeMessageWsWebApp host) : IClassFixture<LargeMessageWsWebApp>
{
    private WsWebApp App => host.App;

    [Fact]
    public async Task A_message_of_the_maximum_size_in_base64_can_be_injected()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var content = new byte[LargeMessageWsWebApp.MaxMessageSize];
        new Random(7).NextBytes(content);
        var body = $$"""{"toClient":true,"type":"binary","encoding":"base64","content":"{{Convert.ToBase64String(content)}}"}""";
        Assert.True(body.Length > 30_000_000, "the body is past Kestrel's default limit");

        using var request = new StringContent(body, Encoding.UTF8, "application/json");
        var message = await ApiAssert.JsonAsync(await App.Api.PostAsync(new Uri($"/api/flows/{flow.Id}/messages", UriKind.Relative), request), HttpStatusCode.Created);

        Assert.Equal(content.Length, message.GetProperty("length").GetInt64());
        var (type, data) = await client.ReceiveAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(content, data);
    }

    [Fact]
    public async Task A_body_past_the_maximum_size_in_base64_is_a_413_problem()
    {
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;
        var limit = ((LargeMessageWsWebApp.MaxMessageSize + 2) / 3 * 4) + (64 * 1024);
        var body = $$"""{"toClient":true,"type":"binary","encoding":"base64","content":"{{new string('A', (int)limit)}}"}""";

        // Expect: 100-continue lets the server refuse on Content-Length alone, before the client sends the body.
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"/api/flows/{flow.Id}/messages", UriKind.Relative))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.ExpectContinue = true;
        var problem = await ApiAssert.ProblemAsync(await App.Api.SendAsync(request), HttpStatusCode.RequestEntityTooLarge);

        Assert.Contains(problem.GetProperty("errors").EnumerateObject(), e => e.Name == "body");
        Assert.True(await client.NothingArrivesAsync(TimeSpan.FromMilliseconds(200)));
    }
}
