using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Logging;
using VicunaBatch.Cli;

namespace VicunaBatch.Api.Tests;

/// <summary>
/// A serve of its own for the probes of issue 22 (refused requests): a 1 MiB upload limit, and no batch ever runs on it,
/// so its blob folder changes only by what the probes send (<see cref="BlobEntries"/> before and after a refusal).
/// </summary>
public sealed class ProbeServerFixture : ServerFixture
{
    public const long MaxUploadBytes = 1024 * 1024;

    protected override ServeSettings Configure(ServeSettings settings) => settings with { MaxUploadBytes = MaxUploadBytes };

    /// <summary>Every file and folder under serve's blob store (<c>--data</c>/blobs), its own <c>.tmp</c> folder aside
    /// (made at the first write and kept) but not what is in it; relative paths, sorted.</summary>
    public IReadOnlyList<string> BlobEntries()
    {
        var root = Path.Combine(DataPath, "blobs");
        if (!Directory.Exists(root)) return [];
        return Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(root, p).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(p => p != ".tmp")
            .Order(StringComparer.Ordinal).ToList();
    }
}

[CollectionDefinition(Name)]
public sealed class ProbeCollection : ICollectionFixture<ProbeServerFixture>
{
    public const string Name = "probes";
}

/// <summary>What a host logged: level, category, message and exception of each entry.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Category, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(LogLevel Level, string Category, string Message, Exception? Exception)> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    private sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) capture._entries.Enqueue((logLevel, category, formatter(state, exception), exception));
        }
    }
}

/// <summary>multipart/form-data bodies written by hand, to send what no well-behaved client would.</summary>
internal static class RawMultipart
{
    public const string Boundary = "probe-7f3a9c";

    public static string Field(string name, string value) =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n";

    public static string FileHeader(string name = "file", string filename = "input.jsonl") =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/jsonl\r\n\r\n";

    public static string File(string content, string name = "file", string filename = "input.jsonl") => FileHeader(name, filename) + content + "\r\n";

    public const string End = $"--{Boundary}--\r\n";

    public static HttpContent Content(string body, string boundary = Boundary) => WithType(new ByteArrayContent(Encoding.UTF8.GetBytes(body)), boundary);

    public static HttpContent WithType(HttpContent content, string boundary = Boundary)
    {
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={boundary}");
        return content;
    }
}

/// <summary>A forward-only body of <paramref name="prefix"/>, <paramref name="fillerLength"/> bytes of 'x' and
/// <paramref name="suffix"/>: sent chunked (no Content-Length); <see cref="NumBytesRead"/> says how much the client sent.</summary>
internal sealed class FillerStream(string prefix, long fillerLength, string suffix) : Stream
{
    private readonly byte[] _prefix = Encoding.UTF8.GetBytes(prefix), _suffix = Encoding.UTF8.GetBytes(suffix);
    private long _position;

    public long NumBytesRead => Interlocked.Read(ref _position);

    public override int Read(byte[] buffer, int offset, int count)
    {
        long total = _prefix.Length + fillerLength + _suffix.Length;
        int n = (int)Math.Min(count, total - _position);
        for (int i = 0; i < n; i++)
        {
            long p = _position + i;
            buffer[offset + i] = p < _prefix.Length ? _prefix[p] : p < _prefix.Length + fillerLength ? (byte)'x' : _suffix[p - _prefix.Length - fillerLength];
        }
        Interlocked.Add(ref _position, n);
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
