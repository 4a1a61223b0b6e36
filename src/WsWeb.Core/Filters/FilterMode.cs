namespace WsWeb.Core.Filters;

/// <summary>How an evaluation treats a regex that runs past its match timeout (100 ms).</summary>
public enum FilterMode
{
    /// <summary>
    /// For the proxy's own decisions (rules, intercept): the timed-out regex counts as no match and evaluation
    /// goes on, so a slow pattern can never stall or crash a relay direction.
    /// </summary>
    Relay,

    /// <summary>
    /// For queries someone waits on (REST, dashboard, export): the first timeout throws
    /// <see cref="FilterTimeoutException"/>. Counting it as no match would make the query cost 100 ms per
    /// message, and its answer would silently leave out what the regex could not decide.
    /// </summary>
    Query,
}
