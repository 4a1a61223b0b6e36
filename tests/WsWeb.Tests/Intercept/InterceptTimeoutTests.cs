using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using WsWeb.Intercept;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Intercept;

/// <summary>
/// A held message nobody decides on, resolved by its intercept timeout. The timeout runs out when the test says, so the
/// test sees the message held first however slow the machine is (with a real 0.3 s timeout, a poll that came late
/// found nothing held).
/// </summary>
public sealed class InterceptTimeoutTests(InterceptTimeoutTests.Host host) : IClassFixture<InterceptTimeoutTests.Host>, IAsyncLifetime
{
    // An intercept timeout no other timer of the host uses: TimeoutOnCueTimeProvider holds back only these.
    private static readonly TimeSpan HoldTimeout = TimeSpan.FromSeconds(4444);

    private WsWebApp App => host.App;

    public Task InitializeAsync() => App.ResetAndDropHeldAsync();

    public Task DisposeAsync() => App.ResetAsync();

    [Theory]
    [InlineData("drop", "timeout-dropped", false)]
    [InlineData("release", "timeout-released", true)]
    public async Task A_held_message_nobody_handles_times_out_and_the_choice_is_recorded(string action, string resolution, bool arrives)
    {
        var settings = await ApiAssert.JsonAsync(await App.Api.PutAsJsonAsync(
            new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq", timeoutSeconds = HoldTimeout.TotalSeconds, timeoutAction = action }));
        Assert.True(settings.GetProperty("enabled").GetBoolean());
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("waiting");

        // Listed before its timer starts: the timeout is the test's to end once both are there.
        var held = await WaitForHeldAsync(flow.Id);
        Assert.Equal(HoldTimeout.TotalSeconds, held.GetProperty("timeoutAt").GetDouble() - held.GetProperty("heldAt").GetDouble(), 3);
        await Eventually.AssertAsync(() => host.Time.Armed == 1, "the hold's timeout is running");
        await host.Time.FireAllAsync();

        // The timer has run: its decision is recorded (a wait on Message.Dropped could end before that, as a drop is
        // applied before its resolution is recorded).
        var recorded = App.Services.GetRequiredService<HoldResolutions>().Get(flow.WebSocket!.Messages[0]);
        Assert.Equal(resolution, recorded);
        var message = (await ApiAssert.JsonAsync(await App.Api.GetAsync($"/api/flows/{flow.Id}/messages"))).GetProperty("messages")[0];
        Assert.Equal(resolution, message.GetProperty("resolution").GetString());
        Assert.Equal(!arrives, message.GetProperty("dropped").GetBoolean());
        Assert.DoesNotContain((await ApiAssert.JsonAsync(await App.Api.GetAsync("/api/intercept/held"))).EnumerateArray(), h => h.GetProperty("flowId").GetString() == flow.Id);
        if (arrives)
        {
            Assert.Equal("waiting", await client.ReceiveTextAsync());
        }
        else
        {
            Assert.True(await client.NothingArrivesAsync(TimeSpan.FromMilliseconds(200)));
            Assert.Empty(server.Received);
        }
    }

    private async Task<JsonElement> WaitForHeldAsync(string flowId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            foreach (var held in (await ApiAssert.JsonAsync(await App.Api.GetAsync("/api/intercept/held"))).EnumerateArray())
            {
                if (held.GetProperty("flowId").GetString() == flowId)
                {
                    return held;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, "message not held");
            await Task.Delay(20);
        }
    }

    /// <summary>The real host, with a clock whose intercept timeouts run out only when the test says.</summary>
    public sealed class Host : IAsyncLifetime
    {
        public Host()
        {
            App = new WsWebApp(services => services.AddSingleton<TimeProvider>(Time));
        }

        public TimeoutOnCueTimeProvider Time { get; } = new(HoldTimeout);

        public WsWebApp App { get; }

        public Task InitializeAsync() => App.InitializeAsync();

        public Task DisposeAsync() => App.DisposeAsync();
    }

    /// <summary>
    /// The system clock, except that a timer created with <c>onCue</c> as its due time fires only on <see cref="FireAllAsync"/>, on a
    /// thread-pool thread as a real timer would; disposing it first (a decision beat the timeout) disarms it.
    /// </summary>
    public sealed class TimeoutOnCueTimeProvider(TimeSpan onCue) : TimeProvider
    {
        private readonly ConcurrentDictionary<OnCue, byte> _armed = new();

        public int Armed => _armed.Count;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime != onCue)
            {
                return System.CreateTimer(callback, state, dueTime, period);
            }

            var timer = new OnCue(this, callback, state);
            _armed.TryAdd(timer, 0);
            return timer;
        }

        /// <summary>Fires every armed timer and returns once their callbacks have run.</summary>
        public Task FireAllAsync() =>
            Task.WhenAll(_armed.Keys.Where(t => _armed.TryRemove(t, out _)).Select(t => Task.Run(t.Fire)).ToList());

        private sealed class OnCue(TimeoutOnCueTimeProvider provider, TimerCallback callback, object? state) : ITimer
        {
            public void Fire() => callback(state);

            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose() => provider._armed.TryRemove(this, out _);

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }
}
