using System.Diagnostics;
using System.Text;

namespace WsWeb.Proxy.Tests.Infrastructure;

/// <summary>A python3 script written to a temp directory and run; killed (with its tree) on dispose.</summary>
internal sealed class PythonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _stderr = new();

    private PythonProcess(Process process, string directory)
    {
        _process = process;
        _directory = directory;
    }

    public string StandardError
    {
        get { lock (_stderr) { return _stderr.ToString(); } }
    }

    public static PythonProcess Start(string script, params string[] arguments)
    {
        var directory = Path.Combine(Path.GetTempPath(), "wsweb-py-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "peer.py");
        File.WriteAllText(path, script);
        var info = new ProcessStartInfo(ExternalTools.PythonPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-u");
        info.ArgumentList.Add(path);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("python3 did not start");
        var result = new PythonProcess(process, directory);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (result._stderr)
                {
                    result._stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Reads one line of standard output.</summary>
    public async Task<string> ReadLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await _process.StandardOutput.ReadLineAsync(cts.Token)
                ?? throw new InvalidOperationException("python exited without output: " + StandardError);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("python printed nothing in time. stderr: " + StandardError);
        }
    }

    /// <summary>Waits for the script to end and returns its exit code and standard output.</summary>
    public async Task<(int ExitCode, string Output)> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var output = _process.StandardOutput.ReadToEndAsync(cts.Token);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("python did not finish in time. stderr: " + StandardError);
        }

        return (_process.ExitCode, await output);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
