using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// permessage-deflate negotiation for a proxy that terminates both legs (RFC 7692 §5, §7.1).
/// </summary>
/// <remarks>
/// <para>
/// Flow: <see cref="ParseOffers"/> reads the client's <c>Sec-WebSocket-Extensions</c>;
/// <see cref="BuildUpstreamOffer"/> is what we send upstream; <see cref="TryParseResponse"/> checks the
/// server's answer and gives the upstream leg's parameters; <see cref="SelectClientResponse"/> gives the
/// client leg's parameters and the header to relay.
/// </para>
/// <para>
/// The one thing the proxy cannot do is compress with a window below 15 bits: System.IO.Compression
/// exposes no window size for compression. Decompressing is unaffected (a 15-bit window inflates data
/// made with any smaller one), so the limits only bite where we compress:
/// upstream we never offer <c>client_max_window_bits</c>, which RFC 7692 §7.1.2.2 makes the only way a
/// server may limit our window; toward the client we decline offers that demand
/// <c>server_max_window_bits</c> below 15, as §7.1.2.1 requires of a server that cannot honour it.
/// </para>
/// </remarks>
internal static class PerMessageDeflateNegotiation
{
    public const string ExtensionName = "permessage-deflate";

    private const string ServerNoContextTakeover = "server_no_context_takeover";
    private const string ClientNoContextTakeover = "client_no_context_takeover";
    private const string ServerMaxWindowBits = "server_max_window_bits";
    private const string ClientMaxWindowBits = "client_max_window_bits";

    /// <summary>
    /// The valid permessage-deflate offers of a client's <c>Sec-WebSocket-Extensions</c> value (join
    /// repeated header lines with ", "), in the client's order of preference.
    /// </summary>
    /// <remarks>
    /// Offers a server would have to decline (unknown or repeated parameter, bad value) and other
    /// extensions are left out, as are malformed elements: a proxy that strips them changes nothing
    /// a conforming server would have accepted.
    /// </remarks>
    public static IReadOnlyList<DeflateOffer> ParseOffers(string? headerValue)
    {
        var offers = new List<DeflateOffer>();
        foreach (var element in SplitElements(headerValue))
        {
            if (TryParseElement(element, out var name, out var parameters)
                && IsDeflate(name)
                && TryReadOffer(parameters, out var offer))
            {
                offers.Add(offer);
            }
        }

        return offers;
    }

    /// <summary>
    /// The <c>Sec-WebSocket-Extensions</c> value to send upstream for the client's offers, or null to
    /// send none.
    /// </summary>
    /// <remarks>
    /// Each offer is forwarded as the client made it except <c>client_max_window_bits</c>, which is
    /// dropped because we could not honour a smaller window the server might pick. Offers that become
    /// identical are sent once.
    /// </remarks>
    public static string? BuildUpstreamOffer(IReadOnlyList<DeflateOffer> clientOffers)
    {
        ArgumentNullException.ThrowIfNull(clientOffers);
        var sent = new List<DeflateOffer>(clientOffers.Count);
        foreach (var offer in clientOffers)
        {
            var upstream = offer with { ClientMaxWindowBitsOffered = false, ClientMaxWindowBits = null };
            if (!sent.Contains(upstream))
            {
                sent.Add(upstream);
            }
        }

        return sent.Count == 0 ? null : string.Join(", ", sent);
    }

    /// <summary>
    /// Checks the server's <c>Sec-WebSocket-Extensions</c> response against the offers we sent
    /// (<paramref name="sentOffers"/>, i.e. <see cref="ParseOffers"/> of <see cref="BuildUpstreamOffer"/>).
    /// </summary>
    /// <param name="accepted">The upstream leg's parameters, or null when the server declined compression.</param>
    /// <param name="error">Why the response is invalid; the handshake must then fail (RFC 6455 §4.1).</param>
    public static bool TryParseResponse(
        string? headerValue,
        IReadOnlyList<DeflateOffer> sentOffers,
        out DeflateParameters? accepted,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(sentOffers);
        accepted = null;
        DeflateOffer? response = null;
        foreach (var element in SplitElements(headerValue))
        {
            if (!TryParseElement(element, out var name, out var parameters))
            {
                error = $"Malformed Sec-WebSocket-Extensions element '{element.Trim()}'.";
                return false;
            }

            if (!IsDeflate(name))
            {
                error = $"The server accepted extension '{name}', which was not offered.";
                return false;
            }

            if (response is not null)
            {
                error = "The server accepted permessage-deflate more than once.";
                return false;
            }

            if (!TryReadParameters(parameters, isResponse: true, out var read, out error))
            {
                return false;
            }

            response = read;
        }

        if (response is not { } r)
        {
            error = null;
            return true;
        }

        if (sentOffers.Count == 0)
        {
            error = "The server accepted permessage-deflate, which was not offered.";
            return false;
        }

        if (r.ClientMaxWindowBits is not null && !sentOffers.Any(o => o.ClientMaxWindowBitsOffered))
        {
            // §7.1.2.2: a response may only carry client_max_window_bits if the offer did.
            error = "The server sent client_max_window_bits, which was not offered.";
            return false;
        }

        if (!sentOffers.Any(o => Answers(r, o)))
        {
            error = $"The server's permessage-deflate response '{r}' matches none of the offers.";
            return false;
        }

        accepted = new DeflateParameters(
            r.ServerNoContextTakeover,
            r.ClientNoContextTakeover,
            r.ServerMaxWindowBits ?? DeflateParameters.MaxWindowBits,
            r.ClientMaxWindowBits ?? DeflateParameters.MaxWindowBits);
        error = null;
        return true;
    }

    /// <summary>
    /// Picks the client leg's parameters: the first client offer we can serve, or null to answer
    /// without permessage-deflate.
    /// </summary>
    /// <param name="clientOffers">The client's offers, from <see cref="ParseOffers"/>.</param>
    /// <param name="upstreamAccepted">What the server accepted; null means it declined compression.</param>
    /// <remarks>
    /// The legs are independent, but the client leg follows the server's choice: it compresses only
    /// when the server does, and repeats the server's <c>*_no_context_takeover</c> flags (a server may
    /// add either unasked, §7.1.1), so the client sees the handshake it would have seen without us.
    /// Flags the client asked for are always granted.
    /// </remarks>
    public static DeflateResponse? SelectClientResponse(IReadOnlyList<DeflateOffer> clientOffers, DeflateParameters? upstreamAccepted)
    {
        ArgumentNullException.ThrowIfNull(clientOffers);
        if (upstreamAccepted is not { } upstream)
        {
            return null;
        }

        foreach (var offer in clientOffers)
        {
            if (offer.ServerMaxWindowBits is < DeflateParameters.MaxWindowBits)
            {
                // We cannot compress with a smaller window; §7.1.2.1 says decline, and a later offer may fit.
                continue;
            }

            var parameters = new DeflateParameters(
                offer.ServerNoContextTakeover || upstream.ServerNoContextTakeover,
                offer.ClientNoContextTakeover || upstream.ClientNoContextTakeover,
                DeflateParameters.MaxWindowBits,
                offer.ClientMaxWindowBits ?? DeflateParameters.MaxWindowBits);

            // An offered server_max_window_bits must be answered (with 15 here); client_max_window_bits is
            // left out because our inflater takes any window the client uses.
            var header = new DeflateOffer(
                parameters.ServerNoContextTakeover,
                parameters.ClientNoContextTakeover,
                offer.ServerMaxWindowBits);
            return new DeflateResponse(parameters, header.ToString());
        }

        return null;
    }

    /// <summary>Whether a response is a valid acceptance of one particular offer.</summary>
    private static bool Answers(DeflateOffer response, DeflateOffer offer)
    {
        if (response.ClientMaxWindowBits is not null && !offer.ClientMaxWindowBitsOffered)
        {
            return false;
        }

        // The server may use a smaller window than offered, never a larger one (§7.1.2.1). A response
        // that omits an offered server_max_window_bits is tolerated: our inflater does not care.
        return offer.ServerMaxWindowBits is not { } limit
            || response.ServerMaxWindowBits is not { } used
            || used <= limit;
    }

    private static bool IsDeflate(string name) => string.Equals(name, ExtensionName, StringComparison.OrdinalIgnoreCase);

    private static bool TryReadOffer(List<KeyValuePair<string, string?>> parameters, out DeflateOffer offer) =>
        TryReadParameters(parameters, isResponse: false, out offer, out _);

    private static bool TryReadParameters(
        List<KeyValuePair<string, string?>> parameters,
        bool isResponse,
        out DeflateOffer result,
        [NotNullWhen(false)] out string? error)
    {
        result = default;
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in parameters)
        {
            // §7: a parameter may appear once; unknown parameters make the element unacceptable.
            if (!seen.Add(name))
            {
                error = $"permessage-deflate parameter '{name}' appears more than once.";
                return false;
            }

            if (name.Equals(ServerNoContextTakeover, StringComparison.OrdinalIgnoreCase)
                || name.Equals(ClientNoContextTakeover, StringComparison.OrdinalIgnoreCase))
            {
                if (value is not null)
                {
                    error = $"permessage-deflate parameter '{name}' takes no value.";
                    return false;
                }

                result = name.Equals(ServerNoContextTakeover, StringComparison.OrdinalIgnoreCase)
                    ? result with { ServerNoContextTakeover = true }
                    : result with { ClientNoContextTakeover = true };
            }
            else if (name.Equals(ServerMaxWindowBits, StringComparison.OrdinalIgnoreCase))
            {
                if (!TryParseWindowBits(value, out var bits))
                {
                    error = $"server_max_window_bits needs a value from 8 to 15, got '{value}'.";
                    return false;
                }

                result = result with { ServerMaxWindowBits = bits };
            }
            else if (name.Equals(ClientMaxWindowBits, StringComparison.OrdinalIgnoreCase))
            {
                // Valueless only in an offer (§7.1.2.2): it then just says "you may limit my window".
                if (value is null && !isResponse)
                {
                    result = result with { ClientMaxWindowBitsOffered = true };
                    continue;
                }

                if (!TryParseWindowBits(value, out var bits))
                {
                    error = $"client_max_window_bits needs a value from 8 to 15, got '{value}'.";
                    return false;
                }

                result = result with { ClientMaxWindowBitsOffered = true, ClientMaxWindowBits = bits };
            }
            else
            {
                error = $"Unknown permessage-deflate parameter '{name}'.";
                return false;
            }
        }

        error = null;
        return true;
    }

    /// <summary>A decimal from 8 to 15 without leading zeros, as §7.1.2 spells it.</summary>
    private static bool TryParseWindowBits(string? value, out int bits)
    {
        bits = value switch
        {
            "8" => 8,
            "9" => 9,
            "10" => 10,
            "11" => 11,
            "12" => 12,
            "13" => 13,
            "14" => 14,
            "15" => 15,
            _ => 0,
        };
        return bits != 0;
    }

    /// <summary>Splits a list-valued header at commas outside quoted strings; empty elements are skipped (RFC 9110 §5.6.1).</summary>
    private static List<string> SplitElements(string? headerValue)
    {
        var elements = new List<string>();
        if (string.IsNullOrEmpty(headerValue))
        {
            return elements;
        }

        var start = 0;
        var inQuotes = false;
        for (var i = 0; i < headerValue.Length; i++)
        {
            var c = headerValue[i];
            if (inQuotes && c == '\\')
            {
                i++; // an escaped character never ends the quoted string or the element
            }
            else if (c == '"')
            {
                inQuotes = !inQuotes;
            }
            else if (c == ',' && !inQuotes)
            {
                AddElement(headerValue[start..i]);
                start = i + 1;
            }
        }

        // The rest is an element even when a quote is left open, so a malformed response is seen and rejected.
        AddElement(headerValue[start..]);
        return elements;

        void AddElement(string element)
        {
            if (!string.IsNullOrWhiteSpace(element))
            {
                elements.Add(element);
            }
        }
    }

    /// <summary>
    /// Parses <c>extension-token *( ";" extension-param )</c> (RFC 6455 §9.1); a quoted value is unescaped
    /// and must then be a token.
    /// </summary>
    private static bool TryParseElement(string element, out string name, out List<KeyValuePair<string, string?>> parameters)
    {
        parameters = [];
        var reader = new ElementReader(element);
        name = reader.ReadToken();
        if (name.Length == 0)
        {
            return false;
        }

        while (true)
        {
            reader.SkipWhitespace();
            if (reader.AtEnd)
            {
                return true;
            }

            if (!reader.TryConsume(';'))
            {
                return false;
            }

            reader.SkipWhitespace();
            var parameterName = reader.ReadToken();
            if (parameterName.Length == 0)
            {
                return false;
            }

            reader.SkipWhitespace();
            string? value = null;
            if (reader.TryConsume('='))
            {
                reader.SkipWhitespace();
                if (!reader.TryReadValue(out value))
                {
                    return false;
                }
            }

            parameters.Add(new(parameterName, value));
        }
    }

    private ref struct ElementReader(string text)
    {
        private int _position;

        public readonly bool AtEnd => _position >= text.Length;

        public void SkipWhitespace()
        {
            while (_position < text.Length && text[_position] is ' ' or '\t')
            {
                _position++;
            }
        }

        public bool TryConsume(char c)
        {
            if (_position < text.Length && text[_position] == c)
            {
                _position++;
                return true;
            }

            return false;
        }

        public string ReadToken()
        {
            SkipWhitespace();
            var start = _position;
            while (_position < text.Length && IsTokenChar(text[_position]))
            {
                _position++;
            }

            return text[start.._position];
        }

        public bool TryReadValue([NotNullWhen(true)] out string? value)
        {
            if (!TryConsume('"'))
            {
                value = ReadToken();
                return value.Length > 0;
            }

            var builder = new StringBuilder();
            while (_position < text.Length)
            {
                var c = text[_position++];
                if (c == '"')
                {
                    value = builder.ToString();
                    return value.Length > 0 && value.All(IsTokenChar);
                }

                if (c == '\\')
                {
                    if (_position >= text.Length)
                    {
                        break;
                    }

                    c = text[_position++];
                }

                builder.Append(c);
            }

            value = null;
            return false;
        }

        // RFC 9110 §5.6.2 tchar.
        private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);
    }
}
