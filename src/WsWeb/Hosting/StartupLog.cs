namespace WsWeb.Hosting;

/// <summary>Holds back the generic host's own errors while it starts (see Program.cs): WsWeb reports start failures itself.</summary>
internal sealed class StartupLog
{
    public const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    private volatile bool _started;

    /// <summary>The level filter for <see cref="HostCategory"/>: the usual Information and up, errors only once started.</summary>
    public bool Allows(LogLevel level) => level >= LogLevel.Information && (_started || level < LogLevel.Error);

    public void Started() => _started = true;
}
