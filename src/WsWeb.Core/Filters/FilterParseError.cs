namespace WsWeb.Core.Filters;

/// <summary>
/// Why a filter expression was rejected and where: <paramref name="Position"/> is a 0-based character
/// offset into the expression and <paramref name="Length"/> the span to highlight (0 at the end of input).
/// </summary>
public sealed record FilterParseError(string Message, int Position, int Length);
