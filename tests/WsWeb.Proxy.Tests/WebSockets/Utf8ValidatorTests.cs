using System.Text;
using System.Text.Unicode;
using WsWeb.Proxy.WebSockets;

namespace WsWeb.Proxy.Tests.WebSockets;

public sealed class Utf8ValidatorTests
{
    public static TheoryData<string> ValidHex => new()
    {
        "",
        "48656C6C6F",                                   // Hello
        "CEBAE1BDB9CF83CEBCCEB5",                         // κόσμε (Autobahn 6.2)
        "C280", "DFBF",                                   // 2-byte boundaries
        "E0A080", "EFBFBF", "ED9FBF", "EE8080",           // 3-byte boundaries around the surrogates
        "F0908080", "F48FBFBF",                           // 4-byte boundaries, U+10FFFF last
        "E282AC", "F09D849E",                             // € and 𝄞
        "48C3A9E282ACF09D849E21",                         // mixed lengths
    };

    public static TheoryData<string> InvalidHex => new()
    {
        "C080", "C1BF", "E08080", "E09FBF", "F0808080", "F08FBFBF",  // overlong encodings
        "EDA080", "EDBFBF", "EDA080EDB080",                            // UTF-16 surrogates
        "F4908080", "F7BFBFBF", "F888808080",                          // above U+10FFFF / 5-byte form
        "80", "BF", "C3", "E282", "F09D84",                            // lone continuation, truncated at the end
        "C328", "E228A1", "E28228", "F0288CBC", "F09028BC",           // invalid continuation
        "FE", "FF", "C0", "F5",                                        // never valid
        "CEBAE1BDB9CF83CEBCCEB5EDA080656469746564",                    // Autobahn 6.3: κόσμε + surrogate + "edited"
    };

    [Theory]
    [MemberData(nameof(ValidHex))]
    public void Valid_InOneChunk(string hex)
    {
        var validator = new Utf8Validator();
        Assert.True(validator.TryValidate(Convert.FromHexString(hex), isFinal: true));
    }

    [Theory]
    [MemberData(nameof(ValidHex))]
    public void Valid_SplitAtEveryPosition(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        for (var split = 0; split <= bytes.Length; split++)
        {
            var validator = new Utf8Validator();
            Assert.True(validator.TryValidate(bytes.AsSpan(0, split), isFinal: false), $"first part, split {split}");
            Assert.True(validator.TryValidate(bytes.AsSpan(split), isFinal: true), $"second part, split {split}");
        }
    }

    [Theory]
    [MemberData(nameof(ValidHex))]
    public void Valid_SplitTwiceAtEveryPosition_AndByteByByte(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        for (var a = 0; a <= bytes.Length; a++)
        {
            for (var b = a; b <= bytes.Length; b++)
            {
                var validator = new Utf8Validator();
                Assert.True(validator.TryValidate(bytes.AsSpan(0, a), false));
                Assert.True(validator.TryValidate(bytes.AsSpan(a, b - a), false));
                Assert.True(validator.TryValidate(bytes.AsSpan(b), true));
            }
        }

        var single = new Utf8Validator();
        foreach (var b in bytes)
        {
            Assert.True(single.TryValidate([b], isFinal: false));
        }

        Assert.True(single.TryValidate([], isFinal: true));
    }

    [Theory]
    [MemberData(nameof(InvalidHex))]
    public void Invalid_InOneChunk(string hex)
    {
        var validator = new Utf8Validator();
        Assert.False(validator.TryValidate(Convert.FromHexString(hex), isFinal: true));
    }

    [Theory]
    [MemberData(nameof(InvalidHex))]
    public void Invalid_SplitAtEveryPosition_NeverPasses(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        for (var split = 0; split <= bytes.Length; split++)
        {
            var validator = new Utf8Validator();
            var ok = validator.TryValidate(bytes.AsSpan(0, split), isFinal: false)
                && validator.TryValidate(bytes.AsSpan(split), isFinal: true);
            Assert.False(ok, $"split {split}");
        }
    }

    [Theory]
    [InlineData("ED", "A080")]       // surrogate: known bad at the second byte
    [InlineData("F4", "908080")]     // above U+10FFFF: known bad at the second byte
    [InlineData("E0", "8080")]       // overlong: known bad at the second byte
    [InlineData("CE", "41")]         // a lead byte followed by ASCII
    [InlineData("F09D", "8441")]     // a 4-byte sequence broken at its fourth byte
    [InlineData("41", "80")]         // a stray continuation
    public void FailsFast_BeforeTheMessageEnds(string first, string second)
    {
        var validator = new Utf8Validator();
        Assert.True(validator.TryValidate(Convert.FromHexString(first), isFinal: false));
        Assert.False(validator.TryValidate(Convert.FromHexString(second), isFinal: false));
    }

    [Theory]
    [InlineData("CEBAE1BDB9CF83CEBCCEB5EDA080")]
    [InlineData("F490")]
    [InlineData("EDA0")]
    [InlineData("C0")]
    public void FailsFast_OnATailThatCanNeverComplete(string hex)
    {
        var validator = new Utf8Validator();
        Assert.False(validator.TryValidate(Convert.FromHexString(hex), isFinal: false));
    }

    [Fact]
    public void Truncated_AtTheEnd_IsOnlyInvalidWhenFinal()
    {
        var validator = new Utf8Validator();
        Assert.True(validator.TryValidate(Convert.FromHexString("CEBAE1BDB9CF83CEBCCE"), isFinal: false));
        Assert.True(validator.HasPendingBytes);
        Assert.False(validator.TryValidate([], isFinal: true));
    }

    [Fact]
    public void Reset_ForgetsPendingBytes()
    {
        var validator = new Utf8Validator();
        Assert.True(validator.TryValidate([0xE2, 0x82], isFinal: false));
        validator.Reset();
        Assert.False(validator.HasPendingBytes);
        Assert.True(validator.TryValidate("ok"u8, isFinal: true));
    }

    [Fact]
    public void AFinalChunk_StartsTheNextMessageClean()
    {
        var validator = new Utf8Validator();
        Assert.True(validator.TryValidate("€"u8, isFinal: true));
        Assert.True(validator.TryValidate([0xE2], isFinal: false));
        Assert.False(validator.TryValidate([], isFinal: true));
        Assert.False(validator.TryValidate([0x82, 0xAC], isFinal: true));
        validator.Reset();
        Assert.True(validator.TryValidate("next"u8, isFinal: true));
    }

    [Fact]
    public void RandomBytes_RandomSplits_AgreeWithUtf8IsValid()
    {
        var random = new Random(1234);
        var alphabet = Encoding.UTF8.GetBytes("aé€𝄞").Concat(new byte[] { 0x80, 0xBF, 0xC0, 0xED, 0xA0, 0xF4, 0x90, 0xFF, 0xE0 }).ToArray();
        for (var round = 0; round < 5000; round++)
        {
            var bytes = new byte[random.Next(0, 24)];
            for (var i = 0; i < bytes.Length; i++)
            {
                bytes[i] = alphabet[random.Next(alphabet.Length)];
            }

            if (round % 2 == 0)
            {
                // Bias half the rounds towards valid text.
                bytes = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace("\uFFFD", "x", StringComparison.Ordinal));
            }

            var validator = new Utf8Validator();
            var ok = true;
            var position = 0;
            while (ok && position < bytes.Length)
            {
                var length = random.Next(0, bytes.Length - position + 1);
                ok = validator.TryValidate(bytes.AsSpan(position, length), isFinal: false);
                position += length;
            }

            ok = ok && validator.TryValidate([], isFinal: true);
            Assert.Equal(Utf8.IsValid(bytes), ok);
        }
    }
}
