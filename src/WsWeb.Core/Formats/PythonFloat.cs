using System.Globalization;
using System.Text;

namespace WsWeb.Core.Formats;

/// <summary>
/// Formats doubles the way Python's <c>repr(float)</c> does: the shortest digits that round-trip, fixed
/// notation for decimal exponents -4 &lt; e &lt;= 16 (always with a '.'), otherwise <c>1.5e+16</c>.
/// mitmproxy writes tnetstring floats with <c>repr</c> and reads them with <c>float()</c>, so matching
/// it byte for byte keeps our files indistinguishable from its own.
/// </summary>
public static class PythonFloat
{
    public static string Repr(double value)
    {
        if (double.IsNaN(value))
        {
            return "nan";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }

        var negative = double.IsNegative(value);
        if (value == 0)
        {
            return negative ? "-0.0" : "0.0";
        }

        // .NET's "R" gives the shortest round-trip digits, but with its own switch to exponent notation;
        // take the digits and the decimal exponent from it and lay them out as Python does.
        var r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        var exponent = 0;
        var mantissa = r;
        var e = r.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..e];
        }

        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var integerPart = dot < 0 ? mantissa : mantissa[..dot];
        var digits = dot < 0 ? mantissa : integerPart + mantissa[(dot + 1)..];
        var pointPosition = integerPart.Length + exponent;
        var leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits[leadingZeros..].TrimEnd('0');
        pointPosition -= leadingZeros;

        var sb = new StringBuilder(32);
        if (negative)
        {
            sb.Append('-');
        }

        if (pointPosition <= -4 || pointPosition > 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
            {
                sb.Append('.').Append(digits.AsSpan(1));
            }

            var exp = pointPosition - 1;
            sb.Append('e').Append(exp < 0 ? '-' : '+').Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (pointPosition <= 0)
        {
            sb.Append("0.").Append('0', -pointPosition).Append(digits);
        }
        else if (pointPosition >= digits.Length)
        {
            sb.Append(digits).Append('0', pointPosition - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits.AsSpan(0, pointPosition)).Append('.').Append(digits.AsSpan(pointPosition));
        }

        return sb.ToString();
    }

    /// <summary>Parses what Python's <c>float()</c> accepts from a tnetstring: decimal, exponent, inf, nan.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out double value)
    {
        Span<char> chars = stackalloc char[64];
        if (text.Length is 0 or > 64)
        {
            value = 0;
            return false;
        }

        for (var i = 0; i < text.Length; i++)
        {
            var b = text[i];
            if (b is not ((>= (byte)'0' and <= (byte)'9') or (byte)'.' or (byte)'e' or (byte)'E' or (byte)'+' or (byte)'-'
                or (byte)'i' or (byte)'n' or (byte)'f' or (byte)'a' or (byte)'I' or (byte)'N' or (byte)'F' or (byte)'A'))
            {
                value = 0;
                return false;
            }

            chars[i] = (char)b;
        }

        var s = chars[..text.Length];
        var unsigned = s.TrimStart("+-");
        if (unsigned.Length < s.Length - 1)
        {
            value = 0;
            return false;
        }

        var sign = s.Length > 0 && s[0] == '-' ? -1.0 : 1.0;
        if (unsigned.Equals("inf", StringComparison.OrdinalIgnoreCase) || unsigned.Equals("infinity", StringComparison.OrdinalIgnoreCase))
        {
            value = sign * double.PositiveInfinity;
            return true;
        }

        if (unsigned.Equals("nan", StringComparison.OrdinalIgnoreCase))
        {
            value = double.NaN;
            return true;
        }

        return double.TryParse(s, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value);
    }
}
