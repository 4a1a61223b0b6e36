using System.Net;
using System.Net.Http.Json;
using WsWeb.Tests.Infrastructure;

namespace WsWeb.Tests.Intercept;

/// <summary>Decisions on one held message that race each other: one wins, and every loser is told what won.</summary>
public sealed class InterceptDecisionRaceTests(InterceptDecisionRaceTests.Host host) : IClassFixture<InterceptDecisionRaceTests.Host>, IAsyncLifetime
{
    // An intercept timeout no other timer of the host uses: GatedTimeProvider holds only the disposal of these.
    private static readonly TimeSpan HoldTimeout = TimeSpan.FromSeconds(3333);

    private WsWebApp App => host.App;

    public Task InitializeAsync() => App.ResetAsync();

    public Task DisposeAsync() => App.ResetAsync();

    [Fact]
    public async Task A_decision_that_loses_while_the_winner_is_still_applying_its_own_names_the_winners_resolution()
    {
        await App.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq", timeoutSeconds = HoldTimeout.TotalSeconds });
        var (client, server, flow) = await App.ConnectAsync();
        await using var c = client;
        await client.SendTextAsync("decide me");
        var url = $"/api/intercept/held/{flow.Id}/{await App.HeldIndexAsync(flow.Id)}";

        // The winning drop stops in the middle of its decision (disposing the message's timeout timer): it has
        // claimed the message but not yet recorded its resolution anywhere else.
        host.Time.Arm();
        var winner = App.Api.PostAsync(new Uri($"{url}/drop", UriKind.Relative), null);
        await host.Time.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        try
        {
            foreach (var path in new[] { "release", "drop" })
            {
                var detail = (await ApiAssert.ProblemAsync(await App.Api.PostAsync(new Uri($"{url}/{path}", UriKind.Relative), null), HttpStatusCode.Conflict)).GetProperty("detail").GetString();
                Assert.Matches(@"\((it was )?dropped\)", detail);
            }
        }
        finally
        {
            host.Time.Open();
        }

        Assert.Equal("dropped", (await ApiAssert.JsonAsync(await winner)).GetProperty("resolution").GetString());
        Assert.Empty(server.Received);
    }

    [Fact]
    public async Task Concurrent_decisions_on_one_held_message_have_one_winner_and_every_409_names_its_resolution()
    {
        await App.Api.PutAsJsonAsync(new Uri("/api/intercept", UriKind.Relative), new { filter = "~wq" });
        var (client, _, flow) = await App.ConnectAsync();
        await using var c = client;

        // Several rounds: the race between a winner recording its resolution and a loser reading it is narrow.
        // An edit of a large message widens it (the winner copies the content before it records the resolution).
        var large = new string('x', 256 * 1024);
        for (var round = 0; round < 10; round++)
        {
            await client.SendTextAsync($"round {round}");
            var index = await App.HeldIndexAsync(flow.Id);
            var url = $"/api/intercept/held/{flow.Id}/{index}";
            using var start = new SemaphoreSlim(0);
            var decisions = Enumerable.Range(0, 24).Select(async i =>
            {
                await start.WaitAsync();
                return (i % 3) switch
                {
                    0 => await App.Api.PostAsync(new Uri($"{url}/drop", UriKind.Relative), null),
                    1 => await App.Api.PostJsonAsync($"{url}/release", new { content = large + i }),
                    _ => await App.Api.PostAsync(new Uri($"{url}/release", UriKind.Relative), null),
                };
            }).ToList();
            start.Release(decisions.Count);
            var answers = await Task.WhenAll(decisions);

            var won = Assert.Single(answers, a => a.StatusCode == HttpStatusCode.OK);
            var resolution = (await ApiAssert.JsonAsync(won)).GetProperty("resolution").GetString();
            Assert.Contains(resolution, new[] { "dropped", "edited", "released" });
            foreach (var lost in answers.Where(a => a != won))
            {
                var detail = (await ApiAssert.ProblemAsync(lost, HttpStatusCode.Conflict)).GetProperty("detail").GetString();
                Assert.Matches($@"\((it was )?{resolution}\)", detail);
            }

            if (resolution != "dropped")
            {
                await client.ReceiveAsync();
            }
        }
    }

    /// <summary>The real host, with a clock whose intercept timeout timers can be held in their disposal.</summary>
    public sealed class Host : IAsyncLifetime
    {
        public Host()
        {
            App = new WsWebApp(services => services.AddSingleton<TimeProvider>(Time));
        }

        public GatedTimeProvider Time { get; } = new(HoldTimeout);

        public WsWebApp App { get; }

        public Task InitializeAsync() => App.InitializeAsync();

        public Task DisposeAsync() => App.DisposeAsync();
    }

    /// <summary>
    /// The system clock, except that once armed, disposing a timer created with <c>gatedDueTime</c> signals
    /// <see cref="Entered"/> and waits until <see cref="Open"/>: a decision on a held message that wins disposes its
    /// timeout timer after claiming the message, so this keeps the winner inside its decision for as long as needed.
    /// </summary>
    public sealed class GatedTimeProvider(TimeSpan gatedDueTime) : TimeProvider
    {
        private readonly ManualResetEventSlim _open = new(true);

        public TaskCompletionSource Entered { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Arm()
        {
            Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _open.Reset();
        }

        public void Open() => _open.Set();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = System.CreateTimer(callback, state, dueTime, period);
            return dueTime == gatedDueTime ? new GatedTimer(timer, this) : timer;
        }

        private sealed class GatedTimer(ITimer inner, GatedTimeProvider provider) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

            public void Dispose()
            {
                provider.Entered.TrySetResult();
                provider._open.Wait(TimeSpan.FromSeconds(30));
                inner.Dispose();
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }
}
