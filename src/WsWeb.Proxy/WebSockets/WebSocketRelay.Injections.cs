using System.Threading.Channels;
using WsWeb.Core;

namespace WsWeb.Proxy.WebSockets;

// Messages injected by users and addons: one queue per direction, forwarded in the order accepted.
internal sealed partial class WebSocketRelay
{
    private async Task RunInjectionsAsync(ChannelReader<Injection> queue, RelayLeg to, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var injection in queue.ReadAllAsync(cancellationToken))
            {
                var message = injection.Message;
                Interlocked.Add(ref to.IsClient ? ref _queuedToClient : ref _queuedToServer, -message.Content.Length);
                var (recorded, sent, closeSent) = (false, false, false);
                try
                {
                    await to.Sequence.WaitAsync(cancellationToken);
                    try
                    {
                        // Its time is when it takes its place in the flow, not when it was queued: behind a held
                        // message that can be long after, and the flow's times would run backwards.
                        message.Timestamp = Timestamps.Now(_time);
                        _store.AddMessage(_flow, message);
                        recorded = true;
                        await _addons.WebSocketMessageAsync(_flow, message, cancellationToken);
                        if (message.Dropped || message.IsModified)
                        {
                            _store.MessageChanged(_flow, message);
                        }

                        if (!message.Dropped)
                        {
                            closeSent = !await WriteAsync(to, message, static (leg, m) => WriteMessage(leg, m), flush: true, ignoreClosed: false, cancellationToken);
                            sent = !closeSent;
                        }
                    }
                    finally
                    {
                        to.Sequence.Release();
                    }

                    if (closeSent)
                    {
                        throw new InvalidOperationException($"Flow {_flow.Id}: the {to.Name} was sent a close before the injected message could follow; it was not sent.");
                    }

                    injection.Completion?.TrySetResult(message);
                }
                catch (Exception ex)
                {
                    if (recorded && !sent && !message.Dropped)
                    {
                        MarkUndelivered(message);
                    }

                    // Whoever awaits this injection (a REST call) must hear that it failed, and why.
                    injection.Completion?.TrySetException(closeSent ? ex : new InvalidOperationException($"Flow {_flow.Id} closed before the injected message was sent.", ex));
                    if (ex is not InvalidOperationException || !IsRunning)
                    {
                        throw;
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or PeerGoneException || IsConnectionLoss(ex))
        {
            // The relay is ending; FinishAsync fails whatever is still queued.
        }
        catch (Exception ex)
        {
            LogUnexpected(_flow.Id, "injection", ex);
        }
    }
}
