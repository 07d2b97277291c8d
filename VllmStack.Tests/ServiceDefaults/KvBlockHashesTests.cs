using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>Block hashes are XXH64 (System.IO.Hashing's XxHash64): checked bit for bit against Debian's xxhsum.</summary>
public sealed class KvBlockHashesTests
{
    /// <summary>Reference values printed by Debian's xxhsum (xxHash 0.8, XXH64) for the same inputs.</summary>
    [Theory]
    [InlineData("", 0xEF46DB3751D8E999UL)]
    [InlineData("a", 0xD24EC4F1A98C6E5BUL)]
    [InlineData("abc", 0x44BC2CF5AD770999UL)]
    [InlineData("Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1UL)]
    [InlineData("The quick brown fox jumps over the lazy dog, and then some more text to pass 64 bytes.", 0x16FC88BBB2E233F7UL)]
    public void A_models_root_is_the_reference_xxh64_of_its_name(string model, ulong expected)
    {
        Assert.Equal(expected, KvBlockHashes.Root(model));
    }

    /// <summary>
    /// Every length class of XXH64 (tail bytes, 4- and 8-byte lanes, 32-byte stripes) through model names, and blocks of
    /// 0 to 40 tokens as little-endian int32s, against the xxhsum binary.
    /// </summary>
    [Fact]
    public async Task Roots_and_blocks_match_the_xxhsum_binary()
    {
        var random = new Random(1234);
        var dir = Directory.CreateTempSubdirectory("xxh");
        try
        {
            var expected = new Dictionary<string, ulong>();
            async Task AddAsync(string name, byte[] data, ulong hash)
            {
                await File.WriteAllBytesAsync(Path.Combine(dir.FullName, name), data);
                expected[name] = hash;
            }
            for (var length = 0; length <= 100; length++)
            {
                var model = new string([.. Enumerable.Range(0, length).Select(_ => (char)random.Next(0x20, 0x7F))]);
                await AddAsync($"root{length:D3}.bin", Encoding.UTF8.GetBytes(model), KvBlockHashes.Root(model));
            }
            for (var count = 0; count <= 40; count++)
            {
                var tokens = Enumerable.Range(0, count).Select(_ => random.Next(int.MinValue, int.MaxValue)).ToArray();
                var bytes = new byte[count * sizeof(int)];
                for (var i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * sizeof(int)), tokens[i]);
                }
                await AddAsync($"block{count:D3}.bin", bytes, KvBlockHashes.Block(0, tokens));
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
                Assert.Equal(parts[0], KvBlockHashes.Format(expected[parts[1].Trim()]));
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A LoRA root and a chain of three 16-token blocks, as the XXH64 of our own that System.IO.Hashing replaced computed
    /// them: engines, cache servers and routers of either version agree on every block.
    /// </summary>
    [Fact]
    public void Chains_are_the_ones_engines_and_cache_servers_already_exchange()
    {
        var tokens = Enumerable.Range(0, 48).Select(i => i * 7919 - 1000).ToArray();
        var root = KvBlockHashes.Root("meta-llama/Llama-3.1-8B-Instruct", "lora-a");
        Assert.Equal("7dcf309f0387933f", KvBlockHashes.Format(root));
        Assert.Equal(["6c0000f58247f89d", "c35b642986643bad", "a86061cfdc79645c"], KvBlockHashes.Compute(root, tokens, 16).Select(KvBlockHashes.Format));
    }

    [Fact]
    public void Block_chains_depend_on_parent_and_content()
    {
        var a = KvBlockHashes.Block(1, [1, 2, 3, 4]);
        Assert.Equal(a, KvBlockHashes.Block(1, [1, 2, 3, 4]));
        Assert.NotEqual(a, KvBlockHashes.Block(2, [1, 2, 3, 4]));
        Assert.NotEqual(a, KvBlockHashes.Block(1, [1, 2, 3, 5]));
        Assert.Equal(KvBlockHashes.Compute(KvBlockHashes.Root("m"), [1, 2, 3, 4, 5], 2), [KvBlockHashes.Block(KvBlockHashes.Root("m"), [1, 2]), KvBlockHashes.Block(KvBlockHashes.Block(KvBlockHashes.Root("m"), [1, 2]), [3, 4])]);
    }
}
