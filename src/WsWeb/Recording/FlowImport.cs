using System.Globalization;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;

namespace WsWeb.Recording;

/// <summary>What an import did: the flows added (their ids), the messages they hold, and what was left out and why.</summary>
public sealed record ImportReport(string Format, int Flows, int Messages, int Skipped, int AlreadyPresent, IReadOnlyList<string> FlowIds, IReadOnlyList<string> Warnings);

/// <summary>
/// Puts the flows of a file into the store, under its bounds, and says what happened: the upload endpoint
/// (POST /api/flows/import) and <c>--rfile</c> at start both import through here.
/// </summary>
internal static class FlowImport
{
    /// <summary>Adds a flow file's flows to the store as finished flows, as the import endpoint and --rfile do.</summary>
    /// <exception cref="FlowFormatException">The file is not one WsWeb reads; nothing was added.</exception>
    /// <param name="maxInputBytes">Larger than an upload may be for a file named on the command line (--rfile); null: the default.</param>
    public static ImportReport Into(FlowStore store, ReadOnlyMemory<byte> data, FlowFormat? given, long? maxInputBytes = null)
    {
        // Imported flows are kept under the same bounds as captured ones.
        var result = FlowFormats.Import(data, given, FlowImportOptions.Default with
        {
            MaxMessagesPerFlow = store.Options.MaxMessagesPerFlow,
            MaxBytesPerFlow = store.Options.MaxBytesPerFlow,
            MaxInputBytes = maxInputBytes ?? FlowImportOptions.Default.MaxInputBytes,
        });

        var ids = new List<string>(result.Flows.Count);
        var added = new HashSet<HttpFlow>(ReferenceEqualityComparer.Instance);
        var alreadyPresent = 0;
        var notAdded = 0;

        // What our own adds evicted, as the store tells it: removals the proxy or a user causes meanwhile are not ours.
        var removed = new List<HttpFlow>();
        foreach (var flow in result.Flows)
        {
            // The store evicts the oldest finished flow to make room, and never a live one for an import: an import
            // must not cut a running connection off the dashboard. It decides that under the lock it adds in, so a
            // capture starting (and taking the last finished flow's place) meanwhile cannot slip in between.
            switch (store.TryAddFinished(flow, removed))
            {
                case AddOutcome.NoRoom:
                    notAdded++;
                    continue;
                case AddOutcome.AlreadyPresent:
                    // Importing the same file twice is harmless: a flow id already in the store is kept once.
                    alreadyPresent++;
                    continue;
            }

            store.FlowEnded(flow);
            added.Add(flow);
            ids.Add(flow.Id);
        }

        // Flows the store's bounds (--max-flows, the memory budget) pushed out again cannot be asked for by id.
        var warnings = result.Warnings.ToList();
        var bounds = $"{store.Options.MaxFlows} flows, {store.Options.MaxTotalBytes / (1024 * 1024)} MiB of content";
        if (notAdded > 0)
        {
            warnings.Add($"{notAdded} of the {result.Flows.Count} flows in the file were not imported: the store is full ({store.Options.MaxFlows} flows) of live flows, and an import never evicts a live flow.");
        }

        var kept = ids.Select(store.Get).OfType<HttpFlow>().ToList();
        if (kept.Count < ids.Count)
        {
            warnings.Add($"{ids.Count - kept.Count} of the {ids.Count} imported flows did not fit the store's bounds ({bounds}) and were evicted again, oldest first.");
        }

        var displaced = removed.Where(flow => !added.Contains(flow)).ToList();
        if (displaced.Count > 0)
        {
            var shown = string.Join(", ", displaced.Take(MaxIdsInWarning).Select(flow => flow.Id));
            var more = displaced.Count > MaxIdsInWarning ? $" and {displaced.Count - MaxIdsInWarning} more" : "";
            warnings.Add($"{displaced.Count} flow{(displaced.Count == 1 ? " that was" : "s that were")} already in the store (captured or imported before) {(displaced.Count == 1 ? "was" : "were")} evicted to make room under the store's bounds ({bounds}), oldest finished first: {shown}{more}.");
        }

        warnings.AddRange(TrimmedWarnings(result.Trimmed, kept, store.Options));
        var messages = kept.Sum(flow => flow.WebSocket?.Messages.Count ?? 0);
        return new ImportReport(result.Format.ToString().ToLowerInvariant(), kept.Count, messages, result.Skipped, alreadyPresent, [.. kept.Select(flow => flow.Id)], warnings);
    }

    private const int MaxIdsInWarning = 20;

    /// <summary>
    /// What the per-flow bounds cut from the flows this import kept: one warning a flow, or, past
    /// <see cref="MaxIdsInWarning"/> of them, one for all, so that a file of many long flows does not make a report of
    /// thousands of lines. Flows that were not kept (already present, evicted again) have their own warnings, or none.
    /// </summary>
    private static IEnumerable<string> TrimmedWarnings(IReadOnlyList<TrimmedOnImport> trimmed, List<HttpFlow> kept, FlowStoreOptions bounds)
    {
        var keptSet = kept.ToHashSet(ReferenceEqualityComparer.Instance);
        var affected = trimmed.Where(t => keptSet.Contains(t.Flow)).ToList();
        if (affected.Count == 0)
        {
            yield break;
        }

        if (affected.Count <= MaxIdsInWarning)
        {
            foreach (var t in affected)
            {
                yield return string.Create(CultureInfo.InvariantCulture,
                    $"Flow {t.Flow.Id} keeps the newest {t.InFile - t.Trimmed} of its {t.InFile} messages in the file: the oldest {t.Trimmed} were trimmed to stay within {Bounds(t.ByMaxMessages, t.ByMaxBytes, bounds)}, as in a capture (its trimmedMessages counts them).");
            }

            yield break;
        }

        var shown = string.Join(", ", affected.Take(MaxIdsInWarning).Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Flow.Id} ({t.Trimmed} of {t.InFile})")));
        var total = affected.Sum(t => t.Trimmed);
        yield return string.Create(CultureInfo.InvariantCulture,
            $"{affected.Count} imported flows keep only their newest messages: {total} of the file's messages were trimmed, the oldest of each flow, to stay within {Bounds(affected.Any(t => t.ByMaxMessages), affected.Any(t => t.ByMaxBytes), bounds)}, as in a capture (each flow's trimmedMessages counts its own): {shown} and {affected.Count - MaxIdsInWarning} more.");
    }

    private static string Bounds(bool byMaxMessages, bool byMaxBytes, FlowStoreOptions bounds)
    {
        // The byte bound has no option of its own: say how much it is, and what it counts.
        var messages = string.Create(CultureInfo.InvariantCulture, $"--max-messages-per-flow ({bounds.MaxMessagesPerFlow} messages)");
        var bytes = bounds.MaxBytesPerFlow % (1024 * 1024) == 0
            ? string.Create(CultureInfo.InvariantCulture, $"the {bounds.MaxBytesPerFlow / (1024 * 1024)} MiB of messages a flow keeps (content, and 128 bytes a message)")
            : string.Create(CultureInfo.InvariantCulture, $"the {bounds.MaxBytesPerFlow} bytes of messages a flow keeps (content, and 128 bytes a message)");
        return (byMaxMessages, byMaxBytes) switch
        {
            (true, true) => $"{messages} and {bytes}",
            (false, true) => bytes,
            _ => messages,
        };
    }
}
