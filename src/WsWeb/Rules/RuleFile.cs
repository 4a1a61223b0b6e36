using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using WsWeb.Core;
using WsWeb.Proxy;

namespace WsWeb.Rules;

/// <summary>
/// Keeps the rules in <c>rules.json</c> in the data directory, so a team's rules come back when WsWeb restarts, as
/// Burp keeps its match-and-replace rules. The file is what <c>GET /api/rules</c> answers (hits and versions are written
/// but start again from 0 and 1), so it can be edited by hand or made with curl while WsWeb is stopped.
/// </summary>
/// <remarks>
/// Every change is written whole to a temporary file that then replaces <c>rules.json</c>, so a crash mid-write leaves
/// the old rules rather than half a file. Writes run on one background loop: a burst of changes costs one write for
/// the newest state, and an API call never waits on the disk. A file that cannot be read whole is copied aside before
/// anything is written over it, so nothing a user wrote is lost.
/// </remarks>
internal sealed partial class RuleFile(RuleStore rules, ProxyOptions options, TimeProvider time, ILogger<RuleFile> logger) : IHostedService
{
    public const string FileName = "rules.json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// Each saved rule is read as strictly as the API reads one (an unknown or repeated field, a number in quotes is an
    /// error), so a hand-edited "enabeld": false is a rule left out with why, not a drop rule that runs.
    /// </summary>
    private static readonly JsonSerializerOptions StrictJson = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        AllowDuplicateProperties = false,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict,
    };

    /// <summary>An id kept from the file must work in a URL as the API's own do (letters, digits, '-' and '_').</summary>
    private static bool IsUsableId(string? id) =>
        id is { Length: > 0 and <= 64 } && id.All(static c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>A rule's name as a log line or the rules page quotes it: a hand-edited file may hold anything.</summary>
    private static string Quote(string name) => name.Length <= 60 ? name : name[..60] + "…";

    private readonly Channel<bool> _changes = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    private Task _saving = Task.CompletedTask;
    private volatile string? _problem;

    public string Path => System.IO.Path.Combine(options.DataDirectory, FileName);

    /// <summary>Why the rules are not being kept (a failed write, or a file that could not be set aside), or null.</summary>
    public string? Problem => _problem;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var keep = Load();
        if (keep)
        {
            rules.Changed += OnChanged;
            _saving = Task.Run(SaveLoopAsync, CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        rules.Changed -= OnChanged;
        _changes.Writer.TryComplete();

        // The last change reaches the disk before the process ends.
        await _saving.WaitAsync(cancellationToken);
    }

    private void OnChanged() => _changes.Writer.TryWrite(true);

    private async Task SaveLoopAsync()
    {
        await foreach (var _ in _changes.Reader.ReadAllAsync())
        {
            await SaveAsync();
        }
    }

    private async Task SaveAsync()
    {
        // Per process: two WsWebs on one data directory must not write one temporary file (the last to save wins rules.json).
        var temporary = $"{Path}.{Environment.ProcessId}.tmp";
        try
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(rules.Rules.Select(r => r.ToView()).ToList(), Json);
            var create = OwnerOnly.Restrict(new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Options = FileOptions.Asynchronous });

            await using (var file = new FileStream(temporary, create))
            {
                await file.WriteAsync(bytes);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, Path, overwrite: true);
            if (_problem is not null)
            {
                _problem = null;
                LogSavedAgain(logger, Path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A read-only data directory is a fine place for a CA: the rules then last as long as the process.
            if (_problem is null)
            {
                LogNotSaved(logger, Path, ex.Message);
            }

            _problem = $"Rules cannot be saved to {Path} ({ex.Message}); they last until WsWeb stops.";
        }
    }

    /// <summary>Adds the saved rules to the store; false when they must not be written back (the file could not be set aside).</summary>
    private bool Load()
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Path);
        }
        catch (FileNotFoundException)
        {
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left as it is, and never overwritten: whoever fixes its permissions gets their rules back on the next start.
            _problem = $"Rules could not be read from {Path} ({ex.Message}); changes made now last until WsWeb stops.";
            LogNotRead(logger, Path, ex.Message);
            return false;
        }

        // An editor's byte order mark is no reason to lose every rule.
        var json = bytes.AsSpan().StartsWith("\uFEFF"u8) ? bytes.AsSpan(3) : bytes;
        JsonElement[] saved;
        try
        {
            using var document = JsonDocument.Parse(json.ToArray());
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return SetAside([$"it is not a JSON array of rules but a JSON {document.RootElement.ValueKind.ToString().ToLowerInvariant()}"]);
            }

            saved = [.. document.RootElement.EnumerateArray().Select(static e => e.Clone())];
        }
        catch (JsonException ex)
        {
            return SetAside([$"it is not a JSON array of rules: {ex.Message}"]);
        }

        var problems = new List<string>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var renamed = false;
        for (var i = 0; i < saved.Length; i++)
        {
            // One rule at a time: a rule that does not read is left out with why, and the others load.
            RuleRequest? request;
            try
            {
                request = saved[i].Deserialize<RuleRequest>(StrictJson);
            }
            catch (JsonException ex)
            {
                problems.Add($"rule {i}: {ex.Message}");
                continue;
            }

            if (request is null)
            {
                problems.Add($"rule {i}: null");
                continue;
            }

            var which = string.IsNullOrEmpty(request.Name) ? $"rule {i}" : $"rule {i} ('{Quote(request.Name)}')";

            // A kept id keeps links and scripts that name the rule working; a missing, unusable or repeated one gets a
            // new id, which the file then says (it is written back below).
            var kept = IsUsableId(request.Id) && ids.Add(request.Id!);
            renamed |= !kept;
            var id = kept ? request.Id! : Guid.NewGuid().ToString("N")[..12];
            if (!RuleCompiler.TryCompile(id, request, out var rule, out var problem))
            {
                var errors = problem.ProblemDetails.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}");
                problems.Add($"{which}: {string.Join("; ", errors)}");
                continue;
            }

            if (!rules.TryAdd(rule, out _, request.Version is >= 1 and var savedVersion ? savedVersion : 1))
            {
                problems.Add($"{which}: past the limit of {RuleStore.MaxRules} rules");
            }
        }

        LogLoaded(logger, rules.Rules.Length, Path);
        if (problems.Count > 0)
        {
            return SetAside(problems);
        }

        if (renamed)
        {
            // New ids are written back at once, so they are the same after the next start.
            _changes.Writer.TryWrite(true);
        }

        return true;
    }

    /// <summary>
    /// Copies a file that could not be loaded whole next to it, before the next change writes only the rules that loaded;
    /// false when the copy failed (then the file is never written over in this run).
    /// </summary>
    private bool SetAside(IReadOnlyList<string> problems)
    {
        var aside = $"{Path}.rejected-{time.GetUtcNow().ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}";
        try
        {
            File.Copy(Path, aside, overwrite: true);
            OwnerOnly.Restrict(aside);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _problem = $"Some rules in {Path} could not be loaded ({string.Join("; ", problems)}), and the file could not be copied aside ({ex.Message}), so it is left as it is: changes made now last until WsWeb stops.";
            LogNotLoaded(logger, Path, string.Join("; ", problems), "left as it is: changes made now last until WsWeb stops");
            return false;
        }

        LogNotLoaded(logger, Path, string.Join("; ", problems), $"the file as it was is kept in {aside}");

        // The file is made to match the rules in force now, so the next start does not set it aside again.
        _changes.Writer.TryWrite(true);
        return true;
    }

    [LoggerMessage(1, LogLevel.Information, "Rules: {Count} loaded from {Path}.")]
    private static partial void LogLoaded(ILogger logger, int count, string path);

    [LoggerMessage(2, LogLevel.Warning, "Rules: some in {Path} could not be loaded ({Problems}); {Kept}.")]
    private static partial void LogNotLoaded(ILogger logger, string path, string problems, string kept);

    [LoggerMessage(3, LogLevel.Warning, "Rules: {Path} could not be read ({Reason}); it is left as it is, and rule changes made now last until WsWeb stops.")]
    private static partial void LogNotRead(ILogger logger, string path, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Rules: cannot save to {Path} ({Reason}); they last until WsWeb stops.")]
    private static partial void LogNotSaved(ILogger logger, string path, string reason);

    [LoggerMessage(5, LogLevel.Information, "Rules: saved to {Path} again.")]
    private static partial void LogSavedAgain(ILogger logger, string path);
}
