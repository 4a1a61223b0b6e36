using System.Runtime.InteropServices;
using System.Text;

namespace WsWeb.Proxy.Certificates;

/// <summary>
/// Who owns a file, and who this process runs as. .NET has no managed API for either, so this asks libc. Only on
/// Linux, through statx, whose result is laid out the same on every architecture (struct stat is not, and differs
/// between libcs and even between symbols of one libc on macOS); elsewhere the owner is not known.
/// </summary>
internal static class UnixOwner
{
    private const int AtFdCwd = -100;
    private const uint StatxUid = 0x8;

    // sizeof(struct statx) in linux/stat.h; later kernels grow it only into its spare fields.
    private const int StatxSize = 256;
    private const int StatxMaskOffset = 0;
    private const int StatxUidOffset = 20;

    /// <summary>The effective uid, or null where it cannot be asked for (not Linux, no libc to call).</summary>
    public static uint? EffectiveUserId { get; } = ReadEffectiveUserId();

    /// <summary>
    /// The uid owning <paramref name="path"/> (following symbolic links, as reading it does), or null where that cannot be
    /// asked for: not Linux, a libc without statx (musl before 1.2.5), a kernel or seccomp profile that refuses it.
    /// </summary>
    public static uint? OwnerOf(string path)
    {
        if (!OperatingSystem.IsLinux() || EffectiveUserId is null)
        {
            return null;
        }

        var name = Encoding.UTF8.GetBytes(path + "\0");
        var buffer = new byte[StatxSize];
        try
        {
            if (Statx(AtFdCwd, name, 0, StatxUid, buffer) != 0)
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }

        // The kernel says which fields it filled (native byte order, as the struct is); a filesystem without owners leaves the uid out.
        var mask = MemoryMarshal.Read<uint>(buffer.AsSpan(StatxMaskOffset));
        return (mask & StatxUid) == 0 ? null : MemoryMarshal.Read<uint>(buffer.AsSpan(StatxUidOffset));
    }

    private static uint? ReadEffectiveUserId()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            return GetEffectiveUserId();
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserId();

    [DllImport("libc", EntryPoint = "statx")]
    private static extern int Statx(int dirfd, byte[] pathname, int flags, uint mask, byte[] statxbuf);
}
