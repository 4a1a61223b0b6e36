using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;
using WsWeb.Core;
using WsWeb.Core.Filters;
using WsWeb.Core.Flows;
using WsWeb.Core.Formats;
using WsWeb.Recording;

namespace WsWeb.Api;

/// <summary>Flow-state export (JSON, HAR, mitmproxy flow files) and import of the same formats.</summary>
internal static class ExportApi
{

    public static IEndpointRouteBuilder MapExportApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/flows").WithTags("Export and import").RejectRepeatedQuery();
        // One export slot set per host, as the import's: hosts side by side (tests) must not turn each other's away.
        var exports = app.ServiceProvider.GetService<ExportSlots>() ?? new ExportSlots();
        group.MapGet("/export", (FlowStore store, HttpContext context, string? format, string? filter, CancellationToken cancellationToken) => ExportAllAsync(exports, store, context, format, filter, cancellationToken))
            .WithName("ExportFlows")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .WithSummary("Download flows as WsWeb JSON, HAR 1.2 (with WebSocket messages) or a mitmproxy flow file.")
            .WithDescription($"`format` is json (default), har or mitmproxy; optional `filter` selects flows (docs/filters.md). Flows are written oldest first. mitmproxy files are format version 17, which mitmproxy 8.1 and 11/12 both open. {ExportSlots.Help} Example: `curl -OJ 'http://127.0.0.1:8081/api/flows/export?format=mitmproxy&filter=~websocket'`.");
        group.MapGet("/{id}/export", (FlowStore store, HttpContext context, string id, string? format, CancellationToken cancellationToken) => ExportOneAsync(exports, store, context, id, format, cancellationToken))
            .WithName("ExportFlow")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .WithSummary("Download one flow in the chosen format.")
            .WithDescription($"{ExportSlots.Help} Example: `curl -OJ 'http://127.0.0.1:8081/api/flows/{{id}}/export?format=har'`.");
        // One slot per host, not per process: hosts side by side (tests) must not turn each other's imports away.
        var slot = app.ServiceProvider.GetService<ImportSlot>() ?? new ImportSlot();
        group.MapPost("/import", (HttpContext context, FlowStore store, IHostApplicationLifetime lifetime, string? format) => ImportAsync(slot, context, store, lifetime, format))
            .WithName("ImportFlows")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Upload a WsWeb JSON, HAR or mitmproxy file; its flows join the store as imported (not live).")
            .WithDescription($"Send the file as the request body with any Content-Type but multipart/form-data, or as the first file of a multipart/form-data form. The format is detected unless `format` is given. Imported flows cannot be injected into or closed (409). A file over {FlowImportOptions.Default.MaxInputBytes / (1024 * 1024)} MiB is a `413` naming `body`. One import runs at a time: another waits up to {ImportSlot.DefaultWait.TotalSeconds:0} s for it, then is a `429` with `Retry-After`; an upload during which nothing arrives for {ImportSlot.DefaultIdleTimeout.TotalSeconds:0} s, or that takes longer than {ImportSlot.DefaultMaxUploadTime.TotalMinutes:0} min in all, is a `408`. Example: `curl --data-binary @capture.mitm http://127.0.0.1:8081/api/flows/import`.");
        return app;
    }

    private static async Task<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>> ExportAllAsync(
        ExportSlots slots, FlowStore store, HttpContext context, string? format, string? filter, CancellationToken cancellationToken)
    {
        if (!TryFormat(format, out var flowFormat, out var formatProblem))
        {
            return formatProblem;
        }

        if (!ApiProblems.TryParseFilter(filter, out var compiled, out var filterProblem))
        {
            return filterProblem;
        }

        return await InSlotAsync<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>>(slots, context, async handOver =>
        {
            // Filtered before anything is written, so a regex that times out leaves no half-written file behind.
            List<HttpFlow> flows;
            try
            {
                flows = [.. store.Snapshot().Where(f => compiled is null || compiled.Matches(f, FilterMode.Query, cancellationToken))];
            }
            catch (FilterTimeoutException e)
            {
                return ApiProblems.FilterTooSlow(e);
            }

            return handOver(await WriteAsync(flows, flowFormat, cancellationToken), flowFormat, "wsweb-flows");
        }, static (response, busySlots) => ExportsBusy(response, busySlots));
    }

    private static async Task<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>> ExportOneAsync(
        ExportSlots slots, FlowStore store, HttpContext context, string id, string? format, CancellationToken cancellationToken)
    {
        if (!TryFormat(format, out var flowFormat, out var formatProblem))
        {
            return formatProblem;
        }

        if (store.Get(id) is not { } flow)
        {
            return ApiProblems.FlowNotFound(id);
        }

        return await InSlotAsync<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>>(
            slots, context, async handOver => handOver(await WriteAsync([flow], flowFormat, cancellationToken), flowFormat, "wsweb-flow-" + id),
            static (response, busySlots) => ExportsBusy(response, busySlots));
    }

    /// <summary>
    /// Runs <paramref name="export"/> holding one of the export slots until its download has ended (sent, or cut because
    /// the client took nothing for <see cref="ExportSlots.IdleTimeout"/>): the slot bounds the temporary files as well
    /// as the writing. <paramref name="export"/> hands its file over with the function it is given; without that (a
    /// problem instead) the slot is freed at once.
    /// </summary>
    private static async Task<T> InSlotAsync<T>(ExportSlots slots, HttpContext context, Func<Func<FileStream, FlowFormat, string, PushStreamHttpResult>, Task<T>> export, Func<HttpResponse, ExportSlots, T> busy)
        where T : IResult
    {
        if (!await slots.Gate.WaitAsync(slots.Wait, context.RequestAborted))
        {
            return busy(context.Response, slots);
        }

        var handedOver = false;
        try
        {
            return await export((file, format, baseName) =>
            {
                handedOver = true;
                return Download(context, file, format, baseName, slots);
            });
        }
        finally
        {
            if (!handedOver)
            {
                slots.Gate.Release();
            }
        }
    }

    /// <summary>Sends the written file, giving up on a client that takes nothing for a while; then deletes it and frees the slot.</summary>
    private static PushStreamHttpResult Download(HttpContext context, FileStream file, FlowFormat format, string baseName, ExportSlots slots)
    {
        context.Response.ContentLength = file.Length;
        return TypedResults.Stream(async body =>
        {
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
            try
            {
                int read;
                while ((read = await file.ReadAsync(buffer, context.RequestAborted)) > 0)
                {
                    // Kestrel's 240 bytes a second is measured per write: a stalled download of a large export would
                    // hold its file and slot for hours. Nothing taken for the idle timeout ends it.
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
                    idle.CancelAfter(slots.IdleTimeout);
                    await body.WriteAsync(buffer.AsMemory(0, read), idle.Token);
                }
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                context.Abort();
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                // The client went away.
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                await file.DisposeAsync();
                slots.Gate.Release();
            }
        }, FlowFormats.ContentType(format), baseName + FlowFormats.FileExtension(format));
    }

    private static ProblemHttpResult ExportsBusy(HttpResponse response, ExportSlots slots) => ApiProblems.TryLater(response, slots.Wait, "Other exports are being written",
        seconds => $"WsWeb writes and sends at most {slots.Count} export{(slots.Count == 1 ? "" : "s")} at a time, and none of them finished within {seconds} s of this one's arrival. Nothing was written; ask again later (Retry-After).");

    /// <summary>
    /// Writes to a temporary file that deletes itself once sent: the formats write synchronously, which Kestrel forbids
    /// on the response, and a large export must not sit in memory. The writing runs on a thread of its own, so a long
    /// export does not hold a thread-pool thread the relays need.
    /// </summary>
    private static async Task<FileStream> WriteAsync(IEnumerable<HttpFlow> flows, FlowFormat format, CancellationToken cancellationToken)
    {
        // Captured traffic: readable by its owner only, like the CA key.
        var options = OwnerOnly.Restrict(new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Options = FileOptions.DeleteOnClose });

        var file = new FileStream(Path.Combine(Path.GetTempPath(), "wsweb-export-" + Guid.NewGuid().ToString("N")), options);
        try
        {
            await Task.Factory.StartNew(() => FlowFormats.Export(flows, format, file), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch
        {
            await file.DisposeAsync();
            throw;
        }

        file.Position = 0;
        return file;
    }

    private static async Task<Results<Created<ImportReport>, ValidationProblem, ProblemHttpResult>> ImportAsync(ImportSlot slot, HttpContext context, FlowStore store, IHostApplicationLifetime lifetime, string? format)
    {
        // An upload can take long (a large file, a slow link): shutdown must not wait for its end, which is what
        // the host would do for 30 s before cutting the connection with a logged ConnectionAbortedException.
        using var upload = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        try
        {
            return await ReadAndImportAsync(slot, context, store, format, upload.Token);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            // The rest of the body is not waited for: the connection closes after this answer.
            WsWeb.Proxy.Forwarding.ProxyRequestHandler.CloseAfterAnswer(context);
            return TypedResults.Problem(
                "WsWeb is shutting down; the upload was not imported. Send it again once WsWeb runs.",
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "Shutting down");
        }
    }

    private static async Task<Results<Created<ImportReport>, ValidationProblem, ProblemHttpResult>> ReadAndImportAsync(ImportSlot slot, HttpContext context, FlowStore store, string? format, CancellationToken cancellationToken)
    {
        FlowFormat? given = null;
        if (format is not null)
        {
            if (!TryFormat(format, out var parsed, out var formatProblem))
            {
                return formatProblem;
            }

            given = parsed;
        }

        var limit = FlowImportOptions.Default.MaxInputBytes;
        if (context.Request.ContentLength > limit)
        {
            // Said before waiting for the slot: the answer does not depend on what runs.
            return TooLarge(limit);
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = limit;
        }

        // Only multipart/form-data is a form. curl --data-binary sends application/x-www-form-urlencoded
        // unless told otherwise, and that body is still the raw file.
        var multipart = IsMultipart(context.Request, out var boundary);
        if (multipart && boundary.Length == 0)
        {
            return ApiProblems.Invalid("file", "The multipart/form-data upload has no boundary parameter in its Content-Type.");
        }

        // One import at a time, from its first byte read to its last flow stored: each holds its file (up to 512 MiB,
        // twice that while a buffer grows) and the flows read from it, and uploads read side by side before taking
        // turns would hold all of theirs at once (four half-sent ones took 4 GB). One waiting for its turn holds its
        // connection and what Kestrel reads ahead (MaxRequestBufferSize, 1 MiB): the rest of its body waits in the socket.
        if (!await slot.Gate.WaitAsync(slot.Wait, cancellationToken))
        {
            return ImportInProgress(context.Response, slot.Wait);
        }

        try
        {
            // Kestrel's minimum body data rate is off server-wide (relayed bodies may pause), and would not do here
            // anyway: it averages over the whole upload, so a client that sent 100 MB and then vanished without a reset
            // (a laptop shut, a link gone) would keep the slot, and every import out, for days. A pause is what counts.
            context.Request.Body = new IdleTimeoutStream(context.Request.Body, slot.IdleTimeout, slot.MaxUploadTime);
            return await ReadAndImportInSlotAsync(context, store, given, limit, multipart, boundary, cancellationToken);
        }
        catch (UploadTooLongException ex)
        {
            return ApiProblems.ForField(StatusCodes.Status408RequestTimeout, "Upload too slow", "body",
                string.Create(CultureInfo.InvariantCulture, $"The upload took longer than {ex.Total.TotalMinutes:0.###} min, while other imports waited for the one slot; it was not imported. Send the file from a faster link, or import it with --rfile at start."));
        }
        catch (TimeoutException)
        {
            // Kestrel then drains what is left of the body for a few seconds and closes the connection; closing it
            // ourselves, with bytes unread, would reset it and could take the answer with it.
            return TooSlow(slot.IdleTimeout);
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    private static async Task<Results<Created<ImportReport>, ValidationProblem, ProblemHttpResult>> ReadAndImportInSlotAsync(
        HttpContext context, FlowStore store, FlowFormat? given, long limit, bool multipart, string boundary, CancellationToken cancellationToken)
    {
        Stream body = context.Request.Body;
        if (multipart)
        {
            // The form may carry a file as large as a raw upload may be; the framework's multipart default is 128 MiB.
            context.Features.Set<IFormFeature>(new FormFeature(context.Request, new FormOptions { MultipartBodyLengthLimit = limit }));
            IFormCollection form;
            try
            {
                form = await context.Request.ReadFormAsync(cancellationToken);
            }
            catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return TooLarge(limit);
            }
            catch (InvalidDataException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // A bad part header, a section over the form's limits.
                return ApiProblems.Invalid("file", $"The multipart/form-data upload is malformed: {ex.Message}");
            }
            catch (IOException) when (!cancellationToken.IsCancellationRequested)
            {
                // The reader's own words ("Unexpected end of Stream, the content may have already been read by
                // another component") suggest a server bug; what happened is that the body stopped too soon.
                return ApiProblems.Invalid("file", $"The multipart/form-data body ends before its closing boundary (--{boundary}--): the upload is incomplete.");
            }

            if (form.Files.Count == 0)
            {
                return ApiProblems.Invalid("file", "The form has no file; send the capture as the request body or as a file field.");
            }

            body = form.Files[0].OpenReadStream();
        }

        // Held once, not copied again: sized by the declared length, though never more up front than
        // ExactReadLimit, so a client that declares a large file and then trickles it holds little.
        ReadOnlyMemory<byte> data;
        try
        {
            var buffered = new MemoryStream(ReferenceEquals(body, context.Request.Body) && context.Request.ContentLength is { } length
                ? (int)Math.Min(Math.Min(length, limit), ExactReadLimit)
                : 0);
            await body.CopyToAsync(buffered, cancellationToken);
            data = buffered.GetBuffer().AsMemory(0, (int)buffered.Length);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge(limit);
        }

        return Import(data, store, given);
    }

    private const int ExactReadLimit = 64 * 1024 * 1024;

    private static Results<Created<ImportReport>, ValidationProblem, ProblemHttpResult> Import(ReadOnlyMemory<byte> data, FlowStore store, FlowFormat? given)
    {
        try
        {
            return TypedResults.Created("/api/flows", FlowImport.Into(store, data, given));
        }
        catch (FlowFormatException ex)
        {
            return ApiProblems.Invalid("body", ex.Message);
        }
    }


    private static ProblemHttpResult TooLarge(long limit) =>
        ApiProblems.TooLarge("body", $"The file is larger than the {limit / (1024 * 1024)} MiB an import may be.");

    private static ProblemHttpResult TooSlow(TimeSpan idle) => ApiProblems.ForField(StatusCodes.Status408RequestTimeout, "Upload stalled", "body",
        string.Create(CultureInfo.InvariantCulture, $"Nothing arrived for {idle.TotalSeconds:0.###} s before the end of the upload; it was not imported. Send the file again."));

    private static ProblemHttpResult ImportInProgress(HttpResponse response, TimeSpan waited) => ApiProblems.TryLater(response, waited, "Another import is in progress",
        seconds => $"WsWeb imports one file at a time, and another import did not finish within {seconds} s of this one's arrival. Nothing was read or imported; send the file again later (Retry-After).");

    /// <param name="boundary">The form's boundary, empty when the Content-Type has none.</param>
    private static bool IsMultipart(HttpRequest request, out string boundary)
    {
        boundary = "";
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
            || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        boundary = HeaderUtilities.RemoveQuotes(type.Boundary).ToString();
        return true;
    }

    private static bool TryFormat(string? text, out FlowFormat format, out ValidationProblem problem)
    {
        problem = null!;
        switch (text?.ToLowerInvariant())
        {
            case null or "" or "json":
                format = FlowFormat.Json;
                return true;
            case "har":
                format = FlowFormat.Har;
                return true;
            case "mitmproxy" or "mitm" or "flows":
                format = FlowFormat.Mitmproxy;
                return true;
            default:
                format = default;
                problem = ApiProblems.Invalid("format", $"'{text}' is not a format: use json, har or mitmproxy.");
                return false;
        }
    }
}
