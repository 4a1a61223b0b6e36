using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

/// <summary>A parsed RFC 6455 frame header (§5.2).</summary>
internal readonly record struct FrameHeader(
    bool Fin,
    bool Rsv1,
    bool Rsv2,
    bool Rsv3,
    Opcode Opcode,
    bool Masked,
    int MaskKey,
    long PayloadLength,
    int HeaderLength)
{
    public bool IsControl => (byte)Opcode >= 0x8;
}
