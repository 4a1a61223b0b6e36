namespace WsWeb.Proxy.Certificates;

/// <summary>
/// A CA or trust-bundle file is missing, unreadable, corrupt or inconsistent. The CA files are
/// never regenerated over such a file, because it may hold a CA the user has already installed in
/// their browsers and devices; the message says which file and what to do.
/// </summary>
public sealed class CertificateFileException : Exception
{
    public CertificateFileException()
    {
    }

    public CertificateFileException(string message)
        : base(message)
    {
    }

    public CertificateFileException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public CertificateFileException(string message, string filePath, Exception? innerException = null)
        : base(message, innerException)
    {
        FilePath = filePath;
    }

    /// <summary>The offending file, when there is one.</summary>
    public string? FilePath { get; }
}
