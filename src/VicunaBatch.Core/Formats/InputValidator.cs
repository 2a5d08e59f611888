namespace VicunaBatch.Core.Formats;

/// <summary>A model an input file names (<c>body.model</c>), and the first line that names it.</summary>
public sealed record NamedModel(string Name, int Line);

/// <summary>Outcome of the validation pass. <see cref="Errors"/> are in line order; <see cref="Models"/> are the first
/// two distinct models the valid lines name, in the order they first appear (a second is already one too many).</summary>
public sealed record ValidationReport(
    int NumLines, int NumRequests, IReadOnlyList<LineError> Errors, IReadOnlyList<Shard> Shards, BatchEndpoint? Endpoint)
{
    public IReadOnlyList<NamedModel> Models { get; init; } = [];

    /// <summary>Requests counted for the job: valid plus rejected lines.</summary>
    public int NumTotal => NumRequests + Errors.Count;
}

/// <summary>
/// One streaming pass over an input file: parses every line, rejects duplicates (the second
/// occurrence), and cuts shards of <see cref="InputOptions.RequestsPerShard"/> valid requests.
/// </summary>
public sealed class InputValidator(InputOptions options)
{
    private readonly LineParser _parser = new(options);

    public async Task<ValidationReport> ValidateAsync(
        Stream input, string jobId, string inputBlob, InputFormat format, CancellationToken cancellationToken = default,
        BatchEndpoint? expectedEndpoint = null)
    {
        var errors = new List<LineError>();
        var rules = new FileLineRules(expectedEndpoint);
        var planner = new ShardPlanner(jobId, inputBlob, format, options.RequestsPerShard);
        int numLines = 0, numRequests = 0;
        BatchEndpoint? endpoint = null;
        var models = new List<NamedModel>();
        await foreach (var line in PhysicalLineReader.ReadAsync(input, 0, 1, options.MaxLineBytes, cancellationToken))
        {
            numLines = line.LineNumber;
            if (line.IsBlank) { planner.Add(line, isRequest: false, skip: false); continue; }
            var parsed = _parser.Parse(line, format);
            var error = rules.Check(parsed);
            if (error is not null) errors.Add(error);
            else
            {
                numRequests++;
                endpoint ??= parsed.Request!.Endpoint;
                if (models.Count < 2 && parsed.Request!.Model is { } model && !models.Any(m => m.Name == model))
                    models.Add(new NamedModel(model, line.LineNumber));
            }
            planner.Add(line, isRequest: error is null, skip: error is not null);
        }
        return new ValidationReport(numLines, numRequests, errors, planner.Finish(), endpoint) { Models = models };
    }

    /// <summary>Cuts shards; a shard closes when full and the next valid request arrives, so
    /// rejected and blank lines stay with the shard before them (leading ones with the first).</summary>
    private sealed class ShardPlanner(string jobId, string inputBlob, InputFormat format, int requestsPerShard)
    {
        private readonly List<Shard> _shards = [];
        private readonly List<int> _skip = [];
        private int _firstLine, _lineCount, _numRequests;
        private long _byteOffset, _byteLength;

        public void Add(InputLine line, bool isRequest, bool skip)
        {
            if (isRequest && _numRequests == requestsPerShard) Flush();
            if (_lineCount == 0) { _firstLine = line.LineNumber; _byteOffset = line.ByteOffset; }
            _lineCount++;
            _byteLength += line.ByteLength;
            if (skip) _skip.Add(line.LineNumber);
            if (isRequest) _numRequests++;
        }

        public IReadOnlyList<Shard> Finish()
        {
            if (_numRequests > 0) Flush();
            return _shards;
        }

        private void Flush()
        {
            _shards.Add(new Shard
            {
                JobId = jobId, ShardIndex = _shards.Count, InputBlob = inputBlob, Format = format,
                FirstLine = _firstLine, LineCount = _lineCount, ByteOffset = _byteOffset, ByteLength = _byteLength,
                NumRequests = _numRequests, SkipLines = _skip.ToArray(),
            });
            _skip.Clear();
            _lineCount = 0; _numRequests = 0; _byteLength = 0;
        }
    }
}
