namespace WsWeb.Core.Flows;

/// <summary>HTTP header fields in wire order, names as sent; lookups are case-insensitive.</summary>
public sealed class HeaderList : List<KeyValuePair<string, string>>
{
    public HeaderList()
    {
    }

    public HeaderList(IEnumerable<KeyValuePair<string, string>> fields)
        : base(fields)
    {
    }

    public void Add(string name, string value) => Add(new KeyValuePair<string, string>(name, value));

    /// <summary>The first value of a header, or null.</summary>
    public string? this[string name]
    {
        get
        {
            foreach (var (key, value) in this)
            {
                if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
                {
                    return value;
                }
            }

            return null;
        }
    }

    /// <summary>Values of a header joined with ", " as RFC 9110 allows for list-valued fields.</summary>
    public string? GetJoined(string name)
    {
        string? joined = null;
        foreach (var (key, value) in this)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                joined = joined is null ? value : joined + ", " + value;
            }
        }

        return joined;
    }
}
