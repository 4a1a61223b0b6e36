using System.Diagnostics;
using System.Runtime.InteropServices;

namespace WsWeb.Bench;

/// <summary>
/// The whole process's CPU time, the kernel's part of it, and (on Linux) its context switches and page
/// faults. On a loopback benchmark most of a relay's cost is kernel work: TCP, thread wake-ups, and
/// zeroing the fresh pages that captured messages land on. msg/s on a shared machine hides it; these show it.
/// </summary>
internal readonly record struct ProcessCounters(TimeSpan Cpu, TimeSpan KernelCpu, long? ContextSwitches, long? PageFaults)
{
    private const int RusageSelf = 0;

    public static ProcessCounters Read()
    {
        using var process = Process.GetCurrentProcess();
        var (switches, faults) = ReadResourceUsage();
        return new ProcessCounters(process.TotalProcessorTime, process.PrivilegedProcessorTime, switches, faults);
    }

    public static ProcessCounters operator -(ProcessCounters after, ProcessCounters before) => new(
        after.Cpu - before.Cpu,
        after.KernelCpu - before.KernelCpu,
        after.ContextSwitches - before.ContextSwitches,
        after.PageFaults - before.PageFaults);

    private static (long? ContextSwitches, long? PageFaults) ReadResourceUsage()
    {
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess)
        {
            return (null, null);
        }

        // struct rusage on 64-bit Linux: two timevals, then 14 longs; ru_minflt is the fifth of them
        // and ru_nvcsw, ru_nivcsw the last two.
        Span<long> usage = stackalloc long[18];
        return GetResourceUsage(RusageSelf, ref MemoryMarshal.GetReference(usage)) == 0
            ? (usage[16] + usage[17], usage[8])
            : (null, null);
    }

    [DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetResourceUsage(int who, ref long usage);
}
