using System.Globalization;
using System.Text.Json;

namespace WsWeb.Core.Formats;

/// <summary>
/// Typed reads from a <see cref="JsonDocument"/> that fail with a <see cref="FlowFormatException"/> naming the
/// JSON path ("$.flows[2].request.port: expected an integer, found a string"). Absent and null mean the same.
/// </summary>
internal static class JsonFields
{
    public static JsonDocument Parse(ReadOnlyMemory<byte> data, int maxDepth)
    {
        // Notepad and some exporters start UTF-8 files with a byte order mark, which the reader does not skip.
        var bom = data.Span.StartsWith("\uFEFF"u8) ? 3 : 0;
        try
        {
            return JsonDocument.Parse(data[bom..], new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            var line = (e.LineNumber ?? 0) + 1;
            var column = (e.BytePositionInLine ?? 0) + 1 + (line == 1 ? bom : 0);
            throw new FlowFormatException($"invalid JSON at line {line}, byte {column} of that line: {WithoutPosition(e.Message)}", e);
        }
    }

    /// <summary>The reader's message ends with its own 0-based position, which would contradict ours.</summary>
    private static string WithoutPosition(string message)
    {
        var at = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        return at < 0 ? message : message[..at].TrimEnd();
    }

    public static string Child(string path, string name) => $"{path}.{name}";

    public static string Item(string path, int index) => $"{path}[{index.ToString(CultureInfo.InvariantCulture)}]";

    public static FlowFormatException Error(string path, string detail) => new($"{path}: {detail}");

    public static JsonElement? Get(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static JsonElement RequireObject(JsonElement element, string path) =>
        element.ValueKind == JsonValueKind.Object ? element : throw WrongType(path, element, "an object");

    public static JsonElement Object(JsonElement obj, string name, string path) =>
        OptionalObject(obj, name, path) ?? throw Error(Child(path, name), "missing");

    public static JsonElement? OptionalObject(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } v => v,
        { } v => throw WrongType(Child(path, name), v, "an object"),
    };

    public static JsonElement Array(JsonElement obj, string name, string path) =>
        OptionalArray(obj, name, path) ?? throw Error(Child(path, name), "missing");

    public static JsonElement? OptionalArray(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Array } v => v,
        { } v => throw WrongType(Child(path, name), v, "an array"),
    };

    public static string RequiredString(JsonElement obj, string name, string path) =>
        String(obj, name, path) ?? throw Error(Child(path, name), "missing");

    public static string? String(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => Text(v, Child(path, name)),
        { } v => throw WrongType(Child(path, name), v, "a string"),
    };

    /// <summary>A JSON string as text; an escaped lone surrogate (<c>"\ud800"</c>) parses but is no text, so it is refused here with its path.</summary>
    public static string Text(JsonElement value, string path)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw Error(path, "the string holds a \\u escape of half a UTF-16 surrogate pair (\\ud800–\\udfff) without its other half, which is no text");
        }
    }

    public static double RequiredNumber(JsonElement obj, string name, string path) =>
        Number(obj, name, path) ?? throw Error(Child(path, name), "missing");

    /// <summary>Every number a flow file holds is a timestamp (seconds since 1970) or a duration built on one.</summary>
    public static double? Number(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v => ImportChecks.TimestampProblem(v.GetDouble()) is { } problem ? throw Error(Child(path, name), problem) : v.GetDouble(),
        { } v => throw WrongType(Child(path, name), v, "a number"),
    };

    public static long RequiredInt(JsonElement obj, string name, string path, long min = long.MinValue, long max = long.MaxValue) =>
        Int(obj, name, path, min, max) ?? throw Error(Child(path, name), "missing");

    public static long? Int(JsonElement obj, string name, string path, long min = long.MinValue, long max = long.MaxValue)
    {
        switch (Get(obj, name))
        {
            case null:
                return null;
            case { ValueKind: JsonValueKind.Number } v when v.TryGetInt64(out var n):
                return n >= min && n <= max ? n : throw Error(Child(path, name), $"{n} is out of range");
            case { } v:
                throw WrongType(Child(path, name), v, "an integer");
        }
    }

    public static bool RequiredBool(JsonElement obj, string name, string path) =>
        Bool(obj, name, path) ?? throw Error(Child(path, name), "missing");

    public static bool? Bool(JsonElement obj, string name, string path) => Get(obj, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw WrongType(Child(path, name), v, "true or false"),
    };

    public static byte[] Base64(string value, string path)
    {
        try
        {
            return Convert.FromBase64String(value);
        }
        catch (FormatException)
        {
            throw Error(path, "invalid base64");
        }
    }

    public static FlowFormatException WrongType(string path, JsonElement value, string expected) =>
        Error(path, $"expected {expected}, found {Describe(value.ValueKind)}");

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>Writes a double, or null where JSON has no number for it (NaN, infinities).</summary>
    public static void WriteNumber(Utf8JsonWriter writer, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            writer.WriteNumber(name, v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    public static void WriteString(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }
}
