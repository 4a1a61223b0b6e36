using System.Globalization;
using System.Text;

namespace WsWeb.Core.Formats;

/// <summary>
/// One tnetstring value (the encoding of mitmproxy flow files). Values read from input remember the byte
/// <see cref="Offset"/> they started at, so a flow reader can say where a field of the wrong type was.
/// </summary>
public abstract class TnetValue
{
    private protected TnetValue(long offset) => Offset = offset;

    /// <summary>Byte offset of the value's length prefix in the input, or -1 for values built in code.</summary>
    public long Offset { get; }

    /// <summary>The type tag written after the payload.</summary>
    public abstract char Tag { get; }

    /// <summary>A short name for error messages ("bytes", "int"…).</summary>
    public abstract string TypeName { get; }

    public static TnetValue From(byte[] value) => new TnetBytes(value);

    public static TnetValue From(string? value) => value is null ? TnetNull.Instance : new TnetString(value);

    public static TnetValue From(long value) => new TnetInt(value);

    public static TnetValue From(long? value) => value is { } v ? new TnetInt(v) : TnetNull.Instance;

    public static TnetValue From(double value) => new TnetFloat(value);

    public static TnetValue From(double? value) => value is { } v ? new TnetFloat(v) : TnetNull.Instance;

    public static TnetValue From(bool value) => value ? TnetBool.True : TnetBool.False;

    public static TnetValue From(bool? value) => value is { } v ? From(v) : TnetNull.Instance;
}

/// <summary><c>,</c>: a byte string (Python <c>bytes</c>).</summary>
public sealed class TnetBytes(byte[] value, long offset = -1) : TnetValue(offset)
{
    public byte[] Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    public override char Tag => ',';

    public override string TypeName => "bytes";

    public override string ToString() => Encoding.UTF8.GetString(Value);
}

/// <summary><c>;</c>: a UTF-8 text string (Python <c>str</c>).</summary>
public sealed class TnetString(string value, long offset = -1) : TnetValue(offset)
{
    public string Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    public override char Tag => ';';

    public override string TypeName => "str";

    public override string ToString() => Value;
}

/// <summary><c>#</c>: an integer. Python's are unbounded; ours stop at 64 bits, which every flow field fits.</summary>
public sealed class TnetInt(long value, long offset = -1) : TnetValue(offset)
{
    public long Value { get; } = value;

    public override char Tag => '#';

    public override string TypeName => "int";

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary><c>^</c>: a float, written as Python's <c>repr</c> writes it.</summary>
public sealed class TnetFloat(double value, long offset = -1) : TnetValue(offset)
{
    public double Value { get; } = value;

    public override char Tag => '^';

    public override string TypeName => "float";

    public override string ToString() => PythonFloat.Repr(Value);
}

/// <summary><c>!</c>: <c>true</c> or <c>false</c>.</summary>
public sealed class TnetBool : TnetValue
{
    public static readonly TnetBool True = new(true);

    public static readonly TnetBool False = new(false);

    public TnetBool(bool value, long offset = -1)
        : base(offset) => Value = value;

    public bool Value { get; }

    public override char Tag => '!';

    public override string TypeName => "bool";

    public override string ToString() => Value ? "true" : "false";
}

/// <summary><c>~</c>: Python's <c>None</c>.</summary>
public sealed class TnetNull : TnetValue
{
    public static readonly TnetNull Instance = new();

    public TnetNull(long offset = -1)
        : base(offset)
    {
    }

    public override char Tag => '~';

    public override string TypeName => "null";

    public override string ToString() => "null";
}

/// <summary><c>]</c>: a list (Python writes tuples as lists too).</summary>
public sealed class TnetList(IReadOnlyList<TnetValue> items, long offset = -1) : TnetValue(offset)
{
    public IReadOnlyList<TnetValue> Items { get; } = items ?? throw new ArgumentNullException(nameof(items));

    public override char Tag => ']';

    public override string TypeName => "list";

    public static TnetList Of(params TnetValue[] items) => new(items);
}

/// <summary>
/// <c>}</c>: a dictionary with text keys, in written order. A repeated key keeps the last value, as
/// Python's <c>dict</c> does.
/// </summary>
public sealed class TnetDict : TnetValue
{
    private readonly List<KeyValuePair<string, TnetValue>> _entries = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

    public TnetDict(long offset = -1)
        : base(offset)
    {
    }

    public override char Tag => '}';

    public override string TypeName => "dict";

    public IReadOnlyList<KeyValuePair<string, TnetValue>> Entries => _entries;

    public int Count => _entries.Count;

    public TnetValue? this[string key] => _index.TryGetValue(key, out var i) ? _entries[i].Value : null;

    /// <summary>Adds or replaces <paramref name="key"/>; a replaced key keeps its position.</summary>
    public TnetDict Set(string key, TnetValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (_index.TryGetValue(key, out var i))
        {
            _entries[i] = new(key, value);
        }
        else
        {
            _index[key] = _entries.Count;
            _entries.Add(new(key, value));
        }

        return this;
    }

    public bool ContainsKey(string key) => _index.ContainsKey(key);

    public bool TryGetValue(string key, out TnetValue value)
    {
        if (_index.TryGetValue(key, out var i))
        {
            value = _entries[i].Value;
            return true;
        }

        value = TnetNull.Instance;
        return false;
    }
}
