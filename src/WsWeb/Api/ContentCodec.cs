using System.Text;
using System.Text.Unicode;
using WsWeb.Core.Formats;

namespace WsWeb.Api;

/// <summary>
/// Turns message content given over the API (UTF-8 text, base64 or hex) into the bytes the relay sends,
/// with the same rules for inject and for editing a held message.
/// </summary>
internal static class ContentCodec
{
    public const string Utf8Name = "utf8";
    public const string Base64Name = "base64";
    public const string HexName = "hex";

    /// <returns>Null on success; otherwise the field at fault and why.</returns>
    public static (string Field, string Message)? TryDecode(string? content, string? encoding, bool isText, long maxSize, out byte[] bytes)
    {
        bytes = [];
        if (content is null)
        {
            return ("content", "content is required.");
        }

        switch (encoding?.ToLowerInvariant() ?? Utf8Name)
        {
            case Utf8Name or "utf-8" or "text":
                try
                {
                    bytes = FlowText.StrictUtf8.GetBytes(content);
                }
                catch (EncoderFallbackException)
                {
                    // A JSON string can carry a lone surrogate ("\ud800"), which has no UTF-8 form.
                    return ("content", "content is not valid Unicode text (lone surrogate).");
                }

                break;
            case Base64Name:
                var buffer = new byte[(content.Length * 3 / 4) + 3];
                if (!Convert.TryFromBase64String(content, buffer, out var written))
                {
                    return ("content", "content is not valid base64.");
                }

                bytes = buffer[..written];
                break;
            case HexName:
                var digits = content.Replace(" ", "", StringComparison.Ordinal);
                try
                {
                    bytes = Convert.FromHexString(digits);
                }
                catch (FormatException)
                {
                    return ("content", "content is not valid hex (an even number of 0-9a-f digits).");
                }

                break;
            default:
                return ("encoding", $"encoding must be '{Utf8Name}', '{Base64Name}' or '{HexName}', not '{encoding}'.");
        }

        if (isText && !Utf8.IsValid(bytes))
        {
            return ("content", "a text message must be valid UTF-8; the decoded bytes are not.");
        }

        if (bytes.LongLength > maxSize)
        {
            return ("content", $"content is {bytes.LongLength} bytes, more than the maximum message size of {maxSize} bytes.");
        }

        return null;
    }
}
