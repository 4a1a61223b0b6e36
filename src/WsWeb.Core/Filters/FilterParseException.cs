namespace WsWeb.Core.Filters;

/// <summary>Thrown by <see cref="FlowFilter.Parse"/> for an invalid expression.</summary>
/// <remarks>A <see cref="FormatException"/> so callers that already treat bad user input that way keep working.</remarks>
public sealed class FilterParseException : FormatException
{
    public FilterParseException()
        : this(new FilterParseError("invalid filter expression", 0, 0))
    {
    }

    public FilterParseException(string message)
        : this(new FilterParseError(message, 0, 0))
    {
    }

    public FilterParseException(string message, Exception innerException)
        : base(message, innerException)
    {
        Error = new FilterParseError(message, 0, 0);
    }

    public FilterParseException(FilterParseError error)
        : base(error?.Message)
    {
        ArgumentNullException.ThrowIfNull(error);
        Error = error;
    }

    public FilterParseError Error { get; }

    /// <summary>0-based character offset of the problem in the expression.</summary>
    public int Position => Error.Position;

    /// <summary>Length of the offending text (0 at the end of input).</summary>
    public int Length => Error.Length;
}
