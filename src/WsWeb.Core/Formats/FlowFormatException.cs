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
}
