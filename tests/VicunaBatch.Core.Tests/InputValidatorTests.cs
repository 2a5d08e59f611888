using System.Text;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.Tests;

public class InputValidatorTests
{
    private static Task<ValidationReport> ValidateAsync(byte[] input, int requestsPerShard = 64, InputFormat format = InputFormat.Jsonl) =>
        new InputValidator(new InputOptions { RequestsPerShard = requestsPerShard })
            .ValidateAsync(new MemoryStream(input), "job1", "inputs/in.jsonl", format);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task ValidateAsync_bomCrlfAndBlankLines_acceptedAndPhysicalLinesCounted()
    {
        var input = Utf8("\uFEFF{\"prompt\":\"a\"}\r\n\r\n   \r\n{\"prompt\":\"b\"}\r\n\n{\"prompt\":\"c\"}");

        var report = await ValidateAsync(input);

        Assert.Equal(6, report.NumLines);
        Assert.Equal(3, report.NumRequests);
        Assert.Empty(report.Errors);
        var ids = new List<string>();
        await foreach (var parsed in report.Shards[0].ReadAsync(new MemoryBlobs(input), new LineParser(new InputOptions())))
            ids.Add(parsed.Request!.CustomId);
        Assert.Equal(["line-1", "line-4", "line-6"], ids);
    }

    [Fact]
    public async Task ValidateAsync_duplicateCustomId_secondOccurrenceRejected()
    {
        var input = Utf8("{\"custom_id\":\"a\",\"prompt\":\"x\"}\n{\"custom_id\":\"b\",\"prompt\":\"y\"}\n{\"custom_id\":\"a\",\"prompt\":\"z\"}\n");

        var report = await ValidateAsync(input);

        var error = Assert.Single(report.Errors);
        Assert.Equal(new LineError(3, "a", LineErrorCode.DuplicateCustomId, "custom_id \"a\" already used on an earlier line"), error);
        Assert.Equal(2, report.NumRequests);
        Assert.Equal([3], report.Shards.Single().SkipLines);
    }

    [Fact]
    public async Task ValidateAsync_invalidLinesBetweenGoodOnes_recordedInOrderAndGoodLinesKept()
    {
        var input = Utf8("{\"prompt\":\"a\"}\n{bad\n{\"prompt\":\"b\",\"top_p\":0}\n{\"prompt\":\"c\"}\n");

        var report = await ValidateAsync(input);

        Assert.Equal([(2, LineErrorCode.InvalidJson), (3, LineErrorCode.InvalidParameter)],
            report.Errors.Select(e => (e.LineNumber, e.Code)).ToArray());
        Assert.Equal(2, report.NumRequests);
        Assert.Equal(4, report.NumTotal);
    }

    [Fact]
    public async Task ValidateAsync_sevenRequestsThreePerShard_cutsShardsOnLineBoundaries()
    {
        // lines: 1 a, 2 blank, 3 b, 4 c, 5 bad, 6 d, 7 e, 8 f, 9 blank, 10 g, 11 bad
        var text = "{\"prompt\":\"a\"}\n\n{\"prompt\":\"b\"}\r\n{\"prompt\":\"c\"}\nnope\n{\"prompt\":\"d\"}\n{\"prompt\":\"e\"}\n{\"prompt\":\"f\"}\n\n{\"prompt\":\"g\"}\n[]";
        var input = Utf8(text);

        var report = await ValidateAsync(input, requestsPerShard: 3);

        Assert.Equal([(1, 5, 3), (6, 4, 3), (10, 2, 1)], report.Shards.Select(s => (s.FirstLine, s.LineCount, s.NumRequests)).ToArray());
        Assert.Equal([[5], [], [11]], report.Shards.Select(s => s.SkipLines.ToArray()).ToArray());
        Assert.Equal([0, 1, 2], report.Shards.Select(s => s.ShardIndex).ToArray());
        Assert.Equal(input.Length, report.Shards.Sum(s => s.ByteLength));
        var lines = text.Split('\n');
        foreach (var shard in report.Shards)
        {
            var expected = string.Join("\n", lines[(shard.FirstLine - 1)..shard.LastLine]) + (shard.LastLine < lines.Length ? "\n" : "");
            Assert.Equal(expected, Encoding.UTF8.GetString(input, (int)shard.ByteOffset, (int)shard.ByteLength));
        }
        var prompts = new List<string>();
        await foreach (var parsed in report.Shards[1].ReadAsync(new MemoryBlobs(input), new LineParser(new InputOptions())))
            prompts.Add($"{parsed.LineNumber}:{parsed.Request!.Prompt}");
        Assert.Equal(["6:d", "7:e", "8:f"], prompts);
    }

    [Fact]
    public async Task ValidateAsync_textFile_onePromptPerNonBlankLine()
    {
        var report = await ValidateAsync(Utf8("first\n\nsecond\r\n"), format: InputFormat.Text);

        Assert.Equal(2, report.NumRequests);
        Assert.Equal(BatchEndpoint.Completions, report.Endpoint);
        Assert.Equal((1, 3), (report.Shards[0].FirstLine, report.Shards[0].LineCount));
    }

    [Fact]
    public async Task ValidateAsync_onlyBadLines_hasNoShards()
    {
        var report = await ValidateAsync(Utf8("x\ny\n"));

        Assert.Empty(report.Shards);
        Assert.Equal(2, report.Errors.Count);
    }

    [Fact]
    public void Shard_toJsonFromJson_roundTrips()
    {
        var shard = new Shard
        {
            JobId = "j", ShardIndex = 2, InputBlob = "in.jsonl", Format = InputFormat.Text, FirstLine = 5, LineCount = 3,
            ByteOffset = 100, ByteLength = 30, NumRequests = 2, SkipLines = [6],
        };

        var json = shard.ToJson();
        var back = Shard.FromJson(json);

        Assert.Equal("""{"job_id":"j","shard_index":2,"input_blob":"in.jsonl","format":"text","first_line":5,"line_count":3,"byte_offset":100,"byte_length":30,"num_requests":2,"skip_lines":[6]}""", json);
        Assert.Equal(json, back.ToJson());
    }
}
