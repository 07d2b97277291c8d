using System.Diagnostics;
using System.Text;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.Tests.ServiceDefaults;

public sealed class StableHash64Tests
{
    /// <summary>Reference values printed by Debian's xxhsum (xxHash 0.8, XXH64) for the same inputs.</summary>
    [Theory]
    [InlineData("", 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0x44BC2CF5AD770999UL)]
    [InlineData("Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1UL)]
    [InlineData("The quick brown fox jumps over the lazy dog, and then some more text to pass 64 bytes.", 0x16FC88BBB2E233F7UL)]
    public void Matches_the_reference_xxh64(string input, ulong expected)
    {
        Assert.Equal(expected, StableHash64.Hash(Encoding.UTF8.GetBytes(input)));
    }

    /// <summary>Every length class (tail bytes, 4- and 8-byte lanes, 32-byte stripes) against the xxhsum binary.</summary>
    [Fact]
    public async Task Matches_the_xxhsum_binary_for_every_length_up_to_100_bytes()
    {
        var random = new Random(1234);
        var dir = Directory.CreateTempSubdirectory("xxh");
        try
        {
            var expected = new Dictionary<string, ulong>();
            for (var length = 0; length <= 100; length++)
            {
                var data = new byte[length];
                random.NextBytes(data);
                var file = Path.Combine(dir.FullName, $"{length:D3}.bin");
                await File.WriteAllBytesAsync(file, data);
                expected[Path.GetFileName(file)] = StableHash64.Hash(data);
            }
            var info = new ProcessStartInfo("xxhsum") { RedirectStandardOutput = true, WorkingDirectory = dir.FullName };
            info.ArgumentList.Add("-H1");
            foreach (var name in expected.Keys)
            {
                info.ArgumentList.Add(name);
            }
            using var process = Process.Start(info) ?? throw new InvalidOperationException("xxhsum (Debian package xxhash) is required: .ci/run installs it.");
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(expected.Count, lines.Length);
            foreach (var line in lines)
            {
                var parts = line.Split("  ", 2);
                Assert.Equal(parts[0], expected[parts[1].Trim()].ToString("x16"));
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Token_chains_depend_on_parent_and_content()
    {
        var a = StableHash64.HashTokens(1, [1, 2, 3, 4]);
        Assert.Equal(a, StableHash64.HashTokens(1, [1, 2, 3, 4]));
        Assert.NotEqual(a, StableHash64.HashTokens(2, [1, 2, 3, 4]));
        Assert.NotEqual(a, StableHash64.HashTokens(1, [1, 2, 3, 5]));
    }
}
