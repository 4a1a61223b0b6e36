namespace WsWeb.Core.Addons.Samples;

/// <summary>Where the sample addons print (mitmproxy's examples use print); the console unless a test swaps it.</summary>
public sealed class AddonOutput(Action<string>? write = null)
{
    private readonly Action<string> _write = write ?? Console.WriteLine;

    public void WriteLine(string line) => _write(line);
}
