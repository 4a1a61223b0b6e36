using WsWeb.Proxy.Certificates;

namespace WsWeb.Proxy.Tests.Certificates;

public sealed class LeafCacheTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Same_host_in_any_spelling_gets_the_same_context()
    {
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);

        var first = ca.GetServerContext("example.com");
        Assert.Same(first, ca.GetServerContext("example.com"));
        Assert.Same(first, ca.GetServerContext("EXAMPLE.com."));
        Assert.Same(ca.GetServerContext("::1"), ca.GetServerContext("[0:0:0:0:0:0:0:1]"));
        Assert.NotSame(first, ca.GetServerContext("example.org"));
        Assert.Equal(3, ca.LeavesIssued);
        Assert.Equal(3, ca.CachedLeafCount);
    }

    [Fact]
    public void Fifty_concurrent_requests_for_a_new_host_issue_one_leaf()
    {
        using var ca = CertificateAuthority.LoadOrCreate(_temp.Root, TimeProvider.System);
        const int Callers = 50;
        var results = new object?[Callers];
        using var start = new Barrier(Callers);

        // Dedicated threads released together: pool threads would trickle in one by one on a small machine.
        var threads = Enumerable.Range(0, Callers).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            results[i] = ca.GetServerContext("concurrent.example");
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(1, ca.LeavesIssued);
        Assert.All(results, r => Assert.Same(results[0], r));
        Assert.NotNull(results[0]);
    }

    [Fact]
    public void Cache_is_bounded_and_evicts_the_least_recently_used_host()
    {
        using var ca = CertificateAuthority.LoadOrCreate(new CertificateOptions { DataDirectory = _temp.Root, LeafCacheSize = 4 }, TimeProvider.System);
        Assert.Equal(4, ca.LeafCacheSize);

        var h0 = ca.GetServerContext("h0.example");
        var h1 = ca.GetServerContext("h1.example");
        ca.GetServerContext("h2.example");
        ca.GetServerContext("h3.example");
        Assert.Same(h0, ca.GetServerContext("h0.example")); // h1 is now the least recently used
        ca.GetServerContext("h4.example");

        Assert.Equal(4, ca.CachedLeafCount);
        Assert.Equal(5, ca.LeavesIssued);
        Assert.Same(h0, ca.GetServerContext("h0.example"));
        Assert.NotSame(h1, ca.GetServerContext("h1.example"));
        Assert.Equal(6, ca.LeavesIssued);

        for (var i = 0; i < 20; i++)
        {
            ca.GetServerContext($"many{i}.example");
        }

        Assert.Equal(4, ca.CachedLeafCount);
    }

    [Fact]
    public void Default_options_keep_1024_leaves_under_the_home_directory()
    {
        var options = new CertificateOptions();

        Assert.Equal(1024, options.LeafCacheSize);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".wsweb"), options.DataDirectory);
    }
}
