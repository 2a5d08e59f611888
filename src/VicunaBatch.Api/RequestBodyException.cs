using Microsoft.AspNetCore.Http;

namespace VicunaBatch.Api;

/// <summary>Why a request body was refused while it was read.</summary>
internal enum RequestBodyFault
{
    /// <summary>It broke off, or does not parse as what its Content-Type says: 400 <c>invalid_multipart</c>.</summary>
    Malformed,
    /// <summary>Longer than the limit: 413 <c>request_too_large</c>.</summary>
    TooLarge,
    /// <summary>A part sent twice (two <c>file</c> parts: one would be stored and never named): 400 <c>duplicate_parameter</c>.</summary>
    DuplicatePart,
}

/// <summary>
/// The one exception of the request-body boundary: thrown while a body is read, through whatever was consuming it (a blob
/// store mid-write drops its temporary copy), and answered by <see cref="ApiFaultFilter"/> as its 4xx. Not an
/// <see cref="IOException"/>, so no store mistakes it for a failure of its own.
/// </summary>
internal sealed class RequestBodyException(RequestBodyFault reason, string message, string? param = null, Exception? inner = null)
    : Exception(message, inner)
{
    public RequestBodyFault Reason { get; } = reason;

    public string? Param { get; } = param;

    public static RequestBodyException TooLarge(long maxBytes) =>
        new(RequestBodyFault.TooLarge, $"The request body is larger than the upload limit of {maxBytes} bytes.", "file");

    public static RequestBodyException Malformed(string why, Exception? inner = null) =>
        new(RequestBodyFault.Malformed, $"The multipart/form-data body could not be read: {why}", null, inner);

    public static RequestBodyException DuplicatePart(string name) =>
        new(RequestBodyFault.DuplicatePart, $"'{BatchCreateBody.Abbreviate(name)}' was sent more than once; send one.", name);

    public IResult ToResult() => Reason switch
    {
        RequestBodyFault.TooLarge => ApiErrors.Error(StatusCodes.Status413PayloadTooLarge, Message, "request_too_large", Param),
        RequestBodyFault.DuplicatePart => ApiErrors.BadRequest(Message, Param, "duplicate_parameter"),
        _ => ApiErrors.BadRequest(Message, Param, "invalid_multipart"),
    };
}

/// <summary>
/// A request body as the API reads it, forward only: more than <c>maxBytes</c> (null: no limit) throws
/// <see cref="RequestBodyFault.TooLarge"/> at the first byte past it, whether or not a Content-Length said so (a chunked
/// body); a body that breaks off or does not parse (<see cref="IOException"/>, <see cref="InvalidDataException"/>, the
/// server's own 400) throws <see cref="RequestBodyFault.Malformed"/>.
/// </summary>
internal sealed class RequestBodyStream(Stream inner, long? maxBytes) : Stream
{
    private long _numBytesRead;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n;
        try { n = await inner.ReadAsync(buffer, cancellationToken); }
        catch (Exception e) when (e is IOException or InvalidDataException) { throw Translate(e); }
        return Count(n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n;
        try { n = inner.Read(buffer, offset, count); }
        catch (Exception e) when (e is IOException or InvalidDataException) { throw Translate(e); }
        return Count(n);
    }

    private int Count(int n)
    {
        _numBytesRead += n;
        if (maxBytes is { } max && _numBytesRead > max) throw RequestBodyException.TooLarge(max);
        return n;
    }

    private RequestBodyException Translate(Exception e) => e is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } && maxBytes is { } max
        ? RequestBodyException.TooLarge(max)
        : RequestBodyException.Malformed(e.Message, e);

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
