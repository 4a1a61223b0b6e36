namespace WsWeb.Proxy.WebSockets;

/// <summary>RFC 6455 §7.4 status codes the relay itself uses or must recognise.</summary>
internal static class WebSocketCloseCodes
{
    public const int NormalClosure = 1000;
    public const int GoingAway = 1001;
    public const int ProtocolError = 1002;
    public const int UnsupportedData = 1003;
    public const int NoStatusReceived = 1005;
    public const int AbnormalClosure = 1006;
    public const int InvalidPayload = 1007;
    public const int PolicyViolation = 1008;
    public const int MessageTooBig = 1009;
    public const int InternalError = 1011;

    /// <summary>
    /// Whether a code may appear in a close frame on the wire: 1000–1003, 1007–1011 (1012–1014 are
    /// registered since) and 3000–4999; 1004–1006 and 1015 are reserved for local use.
    /// </summary>
    public static bool IsValidOnWire(int code) => code switch
    {
        >= 1000 and <= 1003 => true,
        >= 1007 and <= 1014 => true,
        >= 3000 and <= 4999 => true,
        _ => false,
    };
}
