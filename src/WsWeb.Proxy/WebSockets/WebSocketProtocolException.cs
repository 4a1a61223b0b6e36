namespace WsWeb.Proxy.WebSockets;

/// <summary>A peer broke RFC 6455; <see cref="CloseCode"/> is what the relay sends it.</summary>
internal sealed class WebSocketProtocolException(int closeCode, string message) : Exception(message)
{
    public int CloseCode { get; } = closeCode;
}
