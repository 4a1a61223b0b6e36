using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace WsWeb.Core.Filters;

internal enum JsonStepKind
{
    Property,
    Index,
    Wildcard,
}

/// <summary>One step of a path: <c>.name</c>/<c>['name']</c>, <c>[3]</c>, or <c>.*</c>/<c>[*]</c>.</summary>
internal readonly record struct JsonPathStep(JsonStepKind Kind, byte[]? Name = null, int Index = 0);

internal enum JsonTest
{
    Exists,
    Equal,
    NotEqual,
    Regex,
}

internal enum JsonLiteralKind
{
    String,
    Number,
    True,
    False,
    Null,
}

internal sealed record JsonLiteral(JsonLiteralKind Kind, byte[]? Utf8 = null, double Number = 0);

/// <summary>
/// A compiled <c>~json</c> test. It walks the content with <see cref="Utf8JsonReader"/> instead of
/// building a DOM: no allocation per message, and it stops as soon as the answer is known.
/// </summary>
/// <remarks>
/// With wildcards the test is existential: <c>$.items[*].id == 3</c> is true if any item's id is 3.
/// Content that is not JSON (or is cut off before the answer) is no match.
/// </remarks>
internal sealed class JsonQuery(JsonPathStep[] steps, JsonTest test, JsonLiteral? literal, FilterRegex? regex)
{
    private const int StackChars = 256;

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        MaxDepth = 256,
    };

    internal JsonLiteral? Literal => literal;

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    public bool Matches(ReadOnlySpan<byte> content, in FilterEvaluation evaluation)
    {
        if (content.StartsWith(Utf8Bom))
        {
            // Utf8JsonReader rejects a BOM; some peers send one anyway.
            content = content[Utf8Bom.Length..];
        }

        if (!LooksLikeJson(content))
        {
            // Most binary or plain-text messages end here, sparing the cost of a JsonException each.
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(content, ReaderOptions);
            return reader.Read() && Walk(ref reader, 0, evaluation);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private bool LooksLikeJson(ReadOnlySpan<byte> content)
    {
        var i = 0;
        while (i < content.Length && content[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            i++;
        }

        if (i == content.Length)
        {
            return false;
        }

        var first = content[i];
        return steps.Length > 0
            ? first is (byte)'{' or (byte)'['
            : first is (byte)'{' or (byte)'[' or (byte)'"' or (byte)'-' or (>= (byte)'0' and <= (byte)'9') or (byte)'t' or (byte)'f' or (byte)'n';
    }

    // The reader sits on the first token of a value. On false, it is left on the last token of that
    // value so the caller's next Read moves past it; on true the whole walk ends, so position is moot.
    private bool Walk(ref Utf8JsonReader reader, int stepIndex, in FilterEvaluation evaluation)
    {
        if (stepIndex == steps.Length)
        {
            var result = TestValue(ref reader, evaluation);
            reader.Skip();
            return result;
        }

        var step = steps[stepIndex];
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject when step.Kind is JsonStepKind.Property or JsonStepKind.Wildcard:
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var hit = step.Kind == JsonStepKind.Wildcard || reader.ValueTextEquals(step.Name);
                    reader.Read();
                    if (!hit)
                    {
                        reader.Skip();
                    }
                    else if (Walk(ref reader, stepIndex + 1, evaluation))
                    {
                        return true;
                    }
                }

                return false;

            case JsonTokenType.StartArray when step.Kind is JsonStepKind.Index or JsonStepKind.Wildcard:
                var index = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (step.Kind == JsonStepKind.Wildcard || index == step.Index)
                    {
                        if (Walk(ref reader, stepIndex + 1, evaluation))
                        {
                            return true;
                        }
                    }
                    else
                    {
                        reader.Skip();
                    }

                    index++;
                }

                return false;

            default:
                reader.Skip();
                return false;
        }
    }

    private bool TestValue(ref Utf8JsonReader reader, in FilterEvaluation evaluation) => test switch
    {
        JsonTest.Exists => true,
        JsonTest.Equal => IsEqual(ref reader),
        JsonTest.NotEqual => !IsEqual(ref reader),
        JsonTest.Regex => IsRegexMatch(ref reader, evaluation),
        _ => false,
    };

    private bool IsEqual(ref Utf8JsonReader reader) => literal!.Kind switch
    {
        JsonLiteralKind.String => reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(literal.Utf8),
        JsonLiteralKind.Number => reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var number) && number == literal.Number,
        JsonLiteralKind.True => reader.TokenType == JsonTokenType.True,
        JsonLiteralKind.False => reader.TokenType == JsonTokenType.False,
        JsonLiteralKind.Null => reader.TokenType == JsonTokenType.Null,
        _ => false,
    };

    // Strings match on their unescaped value, other scalars on their JSON text ("42", "true", "null");
    // objects and arrays never match.
    private bool IsRegexMatch(ref Utf8JsonReader reader, in FilterEvaluation evaluation)
    {
        var token = reader.TokenType;
        if (token is not (JsonTokenType.String or JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null))
        {
            return false;
        }

        // An escaped or UTF-8 string never unescapes to more chars than it has bytes.
        var maxChars = reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length;
        char[]? rented = null;
        var buffer = maxChars <= StackChars
            ? stackalloc char[StackChars]
            : (rented = ArrayPool<char>.Shared.Rent(maxChars));
        try
        {
            var written = token == JsonTokenType.String
                ? reader.CopyString(buffer)
                : Encoding.UTF8.GetChars(reader.ValueSpan, buffer);
            return TextMatching.IsMatch(regex!, buffer[..written], evaluation);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }
}
