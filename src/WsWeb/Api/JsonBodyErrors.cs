using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace WsWeb.Api;

/// <summary>
/// Says why a JSON request body could not be read, in the API's terms: the field (the JSON path without <c>$.</c>,
/// <c>body</c> for the document itself) and what is wrong there, with its line and byte. The serializer's own messages
/// name .NET types (<c>WsWeb.Api.InjectRequest</c>, <c>System.Nullable`1[System.Boolean]</c>), which mean nothing to
/// a client and are no part of the API.
/// </summary>
internal static class JsonBodyErrors
{
    public const string BodyField = "body";

    /// <param name="body">What the endpoint reads the body as, to name the expected type and the known fields; null
    /// when unknown, which leaves only the generic wording.</param>
    public static (string Field, string Message) Describe(JsonException exception, JsonTypeInfo? body)
    {
        var segments = Segments(exception.Path);
        var field = segments.Count == 0 ? BodyField : Join(segments);
        var where = Where(exception);
        var subject = segments.Count == 0 ? "The body" : $"The value of {field}";

        // A reader error (the text is not JSON) comes wrapped: the serializer adds the path to the reader's exception.
        if (exception.InnerException is JsonException)
        {
            return (field, $"{subject} is not valid JSON{where}: {ReaderWords(exception.Message)}");
        }

        // A string that is no text: bytes that are not UTF-8, or an escaped lone surrogate (\ud800). The reader says so
        // only underneath, and the serializer's own words would call it the wrong type.
        if (exception.InnerException is InvalidOperationException { Message: var reason }
            && (reason.Contains("UTF", StringComparison.Ordinal) || reason.Contains("surrogate", StringComparison.OrdinalIgnoreCase)))
        {
            return (field, $"{subject} is not valid text{where}: it holds bytes that are not UTF-8, or a lone surrogate such as \\ud800. Send UTF-8 JSON; binary content goes as base64 or hex (encoding).");
        }

        var parent = segments.Count == 0 ? null : Walk(body, segments.Take(segments.Count - 1));
        var name = segments.Count == 0 ? null : segments[^1];
        if (name is not null && !name.StartsWith('[') && IsUnknown(parent, name, exception.Message))
        {
            var fields = parent is { Kind: JsonTypeInfoKind.Object } ? $"; the fields here are {string.Join(", ", Writable(parent).Select(p => p.Name))}" : "";
            return (field, $"unknown field '{name}'{where}{fields}.");
        }

        // The serializer's wording is the only sign: the field exists, and its value may even be fine.
        if (exception.Message.StartsWith("Duplicate property", StringComparison.Ordinal))
        {
            return (field, $"'{name}' appears twice in the same object (the second time{where}; names match whatever their case): send each field once.");
        }

        return Expected(Walk(body, segments)) is { } expected
            ? (field, $"{subject} must be {expected}{where}.")
            : (field, $"{subject} is not of the type this field takes{where}.");
    }

    /// <summary>
    /// The fields a client sets: a request record's constructor parameters, without the read-only fields of the
    /// resource it writes, which it accepts only so that an answer can be sent back (RuleRequest.Version, say).
    /// </summary>
    private static IEnumerable<JsonPropertyInfo> Writable(JsonTypeInfo type) =>
        type.Properties.Any(p => p.AssociatedParameter is not null) ? type.Properties.Where(p => p.AssociatedParameter is not null) : type.Properties;

    private static bool IsUnknown(JsonTypeInfo? parent, string name, string message) => parent is { Kind: JsonTypeInfoKind.Object }
        ? Property(parent, name) is null
        : message.StartsWith("The JSON property '", StringComparison.Ordinal);

    private static string Where(JsonException exception) => exception is { LineNumber: { } line, BytePositionInLine: { } position }
        ? string.Create(CultureInfo.InvariantCulture, $" at line {line + 1}, byte {position + 1}")
        : "";

    /// <summary>The reader's description without the " Path: … | LineNumber: …" the serializer appends, which we say in our own words.</summary>
    private static string ReaderWords(string message)
    {
        var end = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (end < 0)
        {
            end = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        }

        return (end < 0 ? message : message[..end]).TrimEnd();
    }

    private static string? Expected(JsonTypeInfo? info)
    {
        if (info is null)
        {
            return null;
        }

        var type = Nullable.GetUnderlyingType(info.Type) ?? info.Type;
        if (type == typeof(bool))
        {
            return "true or false";
        }

        if (type == typeof(string))
        {
            return "a string";
        }

        if (type == typeof(int))
        {
            return "a whole number from -2147483648 to 2147483647";
        }

        if (type == typeof(long))
        {
            return "a whole number from -9223372036854775808 to 9223372036854775807";
        }

        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal))
        {
            return "a number";
        }

        return info.Kind switch
        {
            JsonTypeInfoKind.Object => "a JSON object",
            JsonTypeInfoKind.Enumerable => "a JSON array",
            _ => null,
        };
    }

    private static JsonTypeInfo? Walk(JsonTypeInfo? info, IEnumerable<string> segments)
    {
        foreach (var segment in segments)
        {
            if (info is null)
            {
                return null;
            }

            if (segment.StartsWith('['))
            {
                info = info is { Kind: JsonTypeInfoKind.Enumerable, ElementType: { } element } ? info.Options.GetTypeInfo(element) : null;
                continue;
            }

            info = info.Kind == JsonTypeInfoKind.Object && Property(info, segment) is { } property
                ? info.Options.GetTypeInfo(property.PropertyType)
                : null;
        }

        return info;
    }

    private static JsonPropertyInfo? Property(JsonTypeInfo info, string name)
    {
        var comparison = info.Options.PropertyNameCaseInsensitive ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return info.Properties.FirstOrDefault(p => string.Equals(p.Name, name, comparison));
    }

    private static string Join(List<string> segments)
    {
        var field = new System.Text.StringBuilder();
        foreach (var segment in segments)
        {
            if (field.Length > 0 && !segment.StartsWith('['))
            {
                field.Append('.');
            }

            field.Append(segment);
        }

        return field.ToString();
    }

    /// <summary>
    /// "$.replace.pattern" → [replace, pattern]; "$['a b']" → [a b]; "$.items[0]" → [items, [0]]. The serializer writes
    /// names with special characters in brackets and quotes, with ' escaped as \'.
    /// </summary>
    internal static List<string> Segments(string? path)
    {
        var segments = new List<string>();
        if (string.IsNullOrEmpty(path) || path[0] != '$')
        {
            return segments;
        }

        var i = 1;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                var end = path.IndexOfAny(['.', '['], i + 1);
                end = end < 0 ? path.Length : end;
                segments.Add(path[(i + 1)..end]);
                i = end;
            }
            else if (path.AsSpan(i).StartsWith("['"))
            {
                var end = path.IndexOf("']", i + 2, StringComparison.Ordinal);
                while (end > 0 && path[end - 1] == '\\')
                {
                    end = path.IndexOf("']", end + 1, StringComparison.Ordinal);
                }

                end = end < 0 ? path.Length : end;
                segments.Add(path[(i + 2)..end].Replace("\\'", "'", StringComparison.Ordinal));
                i = end + 2;
            }
            else if (path[i] == '[' && path.IndexOf(']', i) is var close and > 0)
            {
                segments.Add(path[i..(close + 1)]);
                i = close + 1;
            }
            else
            {
                break;
            }
        }

        return segments;
    }
}
