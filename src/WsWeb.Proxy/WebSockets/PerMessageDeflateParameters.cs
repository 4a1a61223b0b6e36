using System.IO.Compression;
using System.Text;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// The permessage-deflate parameters in force on one leg (RFC 7692 §7.1). Window sizes are base-2
/// logarithms; an absent window parameter means 15.
/// </summary>
/// <remarks>
/// "Server" and "client" name the roles on that leg: on the client leg the proxy is the server,
/// on the upstream leg it is the client.
/// </remarks>
internal readonly record struct DeflateParameters(
    bool ServerNoContextTakeover,
    bool ClientNoContextTakeover,
    int ServerMaxWindowBits,
    int ClientMaxWindowBits)
{
    public const int MinWindowBits = 8;

    public const int MaxWindowBits = 15;

    /// <summary>What "permessage-deflate" without parameters means.</summary>
    public static DeflateParameters Default => new(false, false, MaxWindowBits, MaxWindowBits);

    /// <summary>The compressor for what we send on this leg.</summary>
    /// <param name="asServer">True on the client leg (we are the server there).</param>
    public MessageDeflater CreateDeflater(bool asServer, CompressionLevel level = CompressionLevel.Fastest) => asServer
        ? new MessageDeflater(ServerNoContextTakeover, ServerMaxWindowBits, level)
        : new MessageDeflater(ClientNoContextTakeover, ClientMaxWindowBits, level);

    /// <summary>The decompressor for what the peer sends on this leg; it follows the peer's context rule.</summary>
    /// <param name="asServer">True on the client leg (we are the server there).</param>
    public MessageInflater CreateInflater(bool asServer, long maxMessageSize) =>
        new(asServer ? ClientNoContextTakeover : ServerNoContextTakeover, maxMessageSize);
}

/// <summary>
/// One permessage-deflate offer as a client sent it (RFC 7692 §7.1). Unlike
/// <see cref="DeflateParameters"/> it keeps what was absent, because a response must mirror the offer:
/// <c>client_max_window_bits</c> may be valueless, and an offered <c>server_max_window_bits</c> has to
/// be answered.
/// </summary>
internal readonly record struct DeflateOffer(
    bool ServerNoContextTakeover = false,
    bool ClientNoContextTakeover = false,
    int? ServerMaxWindowBits = null,
    bool ClientMaxWindowBitsOffered = false,
    int? ClientMaxWindowBits = null)
{
    /// <summary>The offer as one element of a <c>Sec-WebSocket-Extensions</c> value, parameters in RFC order.</summary>
    public override string ToString()
    {
        var builder = new StringBuilder(PerMessageDeflateNegotiation.ExtensionName);
        if (ServerNoContextTakeover)
        {
            builder.Append("; server_no_context_takeover");
        }

        if (ClientNoContextTakeover)
        {
            builder.Append("; client_no_context_takeover");
        }

        if (ServerMaxWindowBits is { } server)
        {
            builder.Append("; server_max_window_bits=").Append(server);
        }

        if (ClientMaxWindowBitsOffered)
        {
            builder.Append("; client_max_window_bits");
            if (ClientMaxWindowBits is { } client)
            {
                builder.Append('=').Append(client);
            }
        }

        return builder.ToString();
    }
}

/// <summary>What to answer a client: the parameters for the client leg and the header value that announces them.</summary>
internal readonly record struct DeflateResponse(DeflateParameters Parameters, string HeaderValue);
