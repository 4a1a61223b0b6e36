namespace WsWeb.Core;

/// <summary>
/// Files and directories only their owner may read: the CA key, captured traffic (exports, flow files) and rules. On
/// Windows there are no Unix modes to set; the user profile's ACLs apply.
/// </summary>
internal static class OwnerOnly
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public const UnixFileMode DirectoryMode = FileMode | UnixFileMode.UserExecute;

    /// <summary>Files these options create are owner-only (an existing file keeps its mode: see <see cref="Restrict(string)"/>).</summary>
    public static FileStreamOptions Restrict(FileStreamOptions options)
    {
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        return options;
    }

    /// <summary>Makes an existing file owner-only.</summary>
    public static void Restrict(string file)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file, FileMode);
        }
    }

    /// <summary>Creates the directory and any missing parents, those it creates owner-only.</summary>
    public static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, DirectoryMode);
        }
    }
}
