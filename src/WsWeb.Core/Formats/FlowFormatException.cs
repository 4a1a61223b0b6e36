namespace WsWeb.Core.Formats;

/// <summary>
/// An import could not read its input. The message says what was wrong and where (a byte offset or a
/// JSON path), so the REST layer can hand it to the user unchanged as a problem detail.
/// </summary>
public class FlowFormatException : Exception
{
    public FlowFormatException()
    {
    }

    public FlowFormatException(string message)
        : base(message)
    {
    }

    public FlowFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Malformed tnetstring data; <see cref="Offset"/> is the byte where the problem was found.</summary>
public sealed class TnetstringException : FlowFormatException
{
    public TnetstringException()
    {
    }

    public TnetstringException(string message)
        : base(message)
    {
    }

    public TnetstringException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public TnetstringException(string message, long offset)
        : base(message)
    {
        Offset = offset;
    }

    /// <summary>Offset from the start of the input, or -1 when unknown.</summary>
    public long Offset { get; } = -1;

    /// <summary>
    /// Where in the enclosing value the problem sits, as dict keys and list indices
    /// (<c>websocket.close_code</c>, <c>websocket.messages[3][2]</c>); null for the outermost value.
    /// </summary>
    public string? Path { get; private init; }

    /// <summary>The input ended before the value at <see cref="Offset"/> did (in its length prefix or its payload).</summary>
    internal bool IsTruncated { get; init; }

    /// <summary>The same problem, seen from the dict key or list index (<c>"[2]"</c>) that holds the failed value.</summary>
    internal TnetstringException Within(string segment) => new(Message, Offset)
    {
        Path = Path is null ? segment : Path.StartsWith('[') ? segment + Path : $"{segment}.{Path}",
        IsTruncated = IsTruncated,
    };
}
