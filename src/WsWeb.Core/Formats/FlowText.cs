using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace WsWeb.Core.Formats;

/// <summary>Conversions the formats share: byte strings, "host:port" addresses, certificates.</summary>
internal static class FlowText
{
    public static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static bool IsValidUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    /// <summary>
    /// Header names and values, methods, paths: UTF-8 when valid, else Latin-1, which maps every byte to one
    /// char so nothing is lost; <see cref="Encode"/> is the inverse for everything we decode.
    /// </summary>
    public static string Decode(byte[] bytes) => IsValidUtf8(bytes) ? Encoding.UTF8.GetString(bytes) : Encoding.Latin1.GetString(bytes);

    public static byte[] Encode(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>Splits "host:port", "[v6]:port" or a bare host (port 0).</summary>
    public static (string Host, int Port)? SplitHostPort(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        if (value.StartsWith('['))
        {
            var close = value.IndexOf(']', StringComparison.Ordinal);
            if (close > 0)
            {
                var host = value[1..close];
                return close + 1 < value.Length && value[close + 1] == ':' && int.TryParse(value.AsSpan(close + 2), NumberStyles.None, CultureInfo.InvariantCulture, out var p6)
                    ? (host, p6)
                    : (host, 0);
            }
        }

        // ":0" is mitmproxy's ("", 0): an address whose host is unknown.
        var colon = value.LastIndexOf(':');
        if (colon >= 0 && value.IndexOf(':', StringComparison.Ordinal) == colon
            && int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            return (value[..colon], port);
        }

        return (value, 0);
    }

    public static string JoinHostPort(string host, long port) =>
        host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[')
            ? $"[{host}]:{port.ToString(CultureInfo.InvariantCulture)}"
            : $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";

    public static byte[] DerToPem(byte[] der) => Encoding.ASCII.GetBytes(PemEncoding.WriteString("CERTIFICATE", der) + "\n");

    /// <summary>The DER inside a PEM certificate, or null if it is not one.</summary>
    public static byte[]? PemToDer(byte[] pem)
    {
        var text = Encoding.ASCII.GetString(pem);
        if (!PemEncoding.TryFind(text, out var fields))
        {
            return null;
        }

        try
        {
            return Convert.FromBase64String(text[fields.Base64Data]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>The subject of a DER certificate, or null if it does not parse.</summary>
    public static string? SubjectOf(byte[] der)
    {
        try
        {
            using var cert = X509CertificateLoader.LoadCertificate(der);
            return cert.Subject;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
