using System.Diagnostics;
using System.Runtime.InteropServices;

namespace WsWeb.Bench;

/// <summary>
/// The whole process's CPU time, the kernel's part of it, and (on Linux) its context switches. On a
/// loopback benchmark most of a relay's cost is kernel TCP work and thread wake-ups, which msg/s on a
/// shared machine hides and these show.
/// </summary>
internal readonly record struct ProcessCounters(TimeSpan Cpu, TimeSpan KernelCpu, long? ContextSwitches)
{
    public static ProcessCounters Read()
    {
        using var process = Process.GetCurrentProcess();
        return new ProcessCounters(process.TotalProcessorTime, process.PrivilegedProcessorTime, ReadContextSwitches());
    }

    public static ProcessCounters operator -(ProcessCounters after, ProcessCounters before) => new(
        after.Cpu - before.Cpu,
        after.KernelCpu - before.KernelCpu,
        after.ContextSwitches - before.ContextSwitches);

    private static long? ReadContextSwitches()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        // struct rusage on 64-bit Linux: two timevals, then 14 longs ending in ru_nvcsw and ru_nivcsw.
        Span<long> usage = stackalloc long[18];
        return GetResourceUsage(RusageSelf, ref MemoryMarshal.GetReference(usage)) == 0 ? usage[16] + usage[17] : null;
    }

    private const int RusageSelf = 0;

    [DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetResourceUsage(int who, ref long usage);
}
