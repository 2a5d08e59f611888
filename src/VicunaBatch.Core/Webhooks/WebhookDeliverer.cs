using System.Net;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Diagnostics;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Webhooks;

/// <summary>Options of <see cref="WebhookDeliverer"/>.</summary>
public sealed class WebhookDelivererOptions
{
    /// <summary>
    /// The <c>whsec_…</c> secret for jobs that have none of their own (see <see cref="IWebhookSecrets"/>). Required; never logged.
    /// </summary>
    public required string SigningSecret { get; init; }

    /// <summary>Per-attempt HTTP timeout. Default 15 s. Keep it well under the outbox queue's lock duration.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Wait before each retry after a failed attempt; attempts = 1 + count. Default the Standard
    /// Webhooks schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 h in all).</summary>
    public IReadOnlyList<TimeSpan> RetryDelays { get; init; } =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2),
        TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    /// <summary>Longest wait of <see cref="WebhookDeliverer.RunAsync"/> on an empty outbox (a local outbox wakes it at once). Default 1 s.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Messages received (and delivered concurrently) per poll. Default 16.</summary>
    public int NumMessagesPerReceive { get; init; } = 16;

    /// <summary>User-Agent of the POSTs. Default "VicunaBatch-Webhooks/1".</summary>
    public string UserAgent { get; init; } = "VicunaBatch-Webhooks/1";

    public void Validate()
    {
        _ = WebhookSigner.DecodeSecret(SigningSecret);
        if (Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "must be > 0");
        if (PollInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "must be > 0");
        if (RetryDelays.Any(d => d < TimeSpan.Zero)) throw new ArgumentOutOfRangeException(nameof(RetryDelays), "delays must be >= 0");
        ArgumentOutOfRangeException.ThrowIfLessThan(NumMessagesPerReceive, 1);
    }
}

/// <summary>
/// Takes event deliveries from the outbox queue and POSTs them, signed, to the job's URL. Attempt n is
/// the message's delivery count. 2xx: recorded and completed. 410 Gone: recorded as disabled, completed.
/// Other status, timeout or connection failure: recorded and redelivered after <c>RetryDelays[n-1]</c>,
/// or, once the schedule is used up, recorded as given up and dead-lettered. A URL the policy refuses at
/// delivery time is recorded as rejected, and so is an address it refuses at connect (the name resolved
/// elsewhere after the check, DNS rebinding: the error says "refused at connect"). An event whose log already
/// holds a final outcome is not sent again. Each attempt is appended to <c>jobs/{id}/webhook_deliveries.jsonl</c>
/// before the message is settled.
/// </summary>
public sealed class WebhookDeliverer
{
    private readonly IWorkQueue _outbox;
    private readonly WebhookDeliveryLog _log;
    private readonly HttpClient _http;
    private readonly WebhookUrlPolicy _policy;
    private readonly WebhookDelivererOptions _options;
    private readonly TimeProvider _time;
    private readonly IWebhookSecrets? _secrets;
    private readonly Action<ReceivedMessage, Exception>? _onError;

    /// <param name="http">Sends the POSTs; build it on <see cref="WebhookHttp.CreateHandler"/> so connects are re-checked.</param>
    /// <param name="secrets">A job's own signing secret; null (or no secret found): <see cref="WebhookDelivererOptions.SigningSecret"/>.</param>
    /// <param name="onError">Told about a message whose handling threw (it is redelivered after its lock expires).</param>
    public WebhookDeliverer(IWorkQueue outbox, IBlobStore blobs, HttpClient http, WebhookUrlPolicy policy, WebhookDelivererOptions options,
        TimeProvider time, IWebhookSecrets? secrets = null, Action<ReceivedMessage, Exception>? onError = null)
    {
        options.Validate();
        (_outbox, _log, _http, _policy, _options, _time, _secrets, _onError) = (outbox, new WebhookDeliveryLog(blobs), http, policy, options, time, secrets, onError);
    }

    public int MaxAttempts => 1 + _options.RetryDelays.Count;

    /// <summary>Delivers until cancelled, then returns (no exception). Host it in a BackgroundService.</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var messages = await _outbox.ReceiveAsync(_options.NumMessagesPerReceive, cancellationToken);
                if (messages.Count == 0) await _outbox.WaitForMessagesAsync(_options.PollInterval, cancellationToken);
                else await Task.WhenAll(messages.Select(m => DeliverSafelyAsync(m, cancellationToken)));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { return; }
            catch (WorkQueueException e) when (e.IsTransient)
            {
                try { await Task.Delay(_options.PollInterval, _time, cancellationToken); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    /// <summary>
    /// For a command that runs once (<c>pipeline run</c>): delivers what the outbox holds now, and the retries this call
    /// schedules, until nothing of it is left to try within <paramref name="maxWait"/>. A retry due later, and one an
    /// earlier process scheduled, stay in the outbox for the next call or a long-running deliverer. Returns the attempts.
    /// </summary>
    public async Task<IReadOnlyList<WebhookAttempt>> DeliverPendingAsync(TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        var deadline = _time.GetUtcNow() + maxWait;
        var attempts = new List<WebhookAttempt>();
        var awaited = new HashSet<string>(StringComparer.Ordinal); // events this call scheduled a retry of, due within the deadline
        while (true)
        {
            var messages = await _outbox.ReceiveAsync(_options.NumMessagesPerReceive, cancellationToken);
            foreach (var message in messages)
            {
                if (await DeliverAsync(message, cancellationToken) is not { } attempt) continue;
                attempts.Add(attempt);
                awaited.Remove(attempt.EventId);
                if (attempt.NextAttemptAt is { } due && due <= deadline) awaited.Add(attempt.EventId);
            }
            if (messages.Count > 0) continue;
            if (awaited.Count == 0 || _time.GetUtcNow() >= deadline) return attempts;
            await _outbox.WaitForMessagesAsync(_options.PollInterval, cancellationToken);
        }
    }

    /// <summary>One attempt for one outbox message; returns what was recorded, or null when the event was
    /// already settled (nothing sent) or the message was not a delivery (dead-lettered).</summary>
    public async Task<WebhookAttempt?> DeliverAsync(ReceivedMessage message, CancellationToken cancellationToken = default)
    {
        WebhookDelivery delivery;
        try { delivery = WebhookDelivery.Parse(message.Body); }
        catch (JsonException e)
        {
            await _outbox.DeadLetterAsync(message, $"not a webhook delivery: {e.Message}", cancellationToken);
            return null;
        }
        var previous = await _log.ReadAsync(delivery.JobId, cancellationToken);
        if (previous.Any(a => a.EventId == delivery.EventId && a.IsFinal))
        {
            await _outbox.CompleteAsync(message, cancellationToken);
            return null;
        }

        int attemptNumber = message.DeliveryCount;
        var (statusCode, error, rejected) = await SendAsync(delivery, cancellationToken);
        if (statusCode is >= 200 and < 300) CrashPoints.Hit(CrashPoints.WebhookAfterSend, delivery.JobId);
        var now = _time.GetUtcNow();
        var outcome = rejected ? WebhookAttemptOutcome.Rejected
            : statusCode is >= 200 and < 300 ? WebhookAttemptOutcome.Delivered
            : statusCode == (int)HttpStatusCode.Gone ? WebhookAttemptOutcome.Disabled
            : attemptNumber >= MaxAttempts ? WebhookAttemptOutcome.GaveUp
            : WebhookAttemptOutcome.Retrying;
        var delay = outcome == WebhookAttemptOutcome.Retrying ? _options.RetryDelays[Math.Max(attemptNumber, 1) - 1] : (TimeSpan?)null;
        var attempt = new WebhookAttempt(delivery.EventId, delivery.EventType, attemptNumber, now, statusCode, error, outcome, now + delay);
        await _log.AppendAsync(delivery.JobId, attempt, cancellationToken);

        if (outcome == WebhookAttemptOutcome.Retrying) await _outbox.AbandonAsync(message, delay!.Value, cancellationToken);
        else if (outcome == WebhookAttemptOutcome.GaveUp)
            await _outbox.DeadLetterAsync(message, $"webhook {delivery.EventId} gave up after {attemptNumber} attempts: {error ?? $"HTTP {statusCode}"}", cancellationToken);
        else await _outbox.CompleteAsync(message, cancellationToken);
        return attempt;
    }

    /// <summary>The POST: (status, null, false) on an answer; (null, error, rejected) when none came.</summary>
    private async Task<(int? StatusCode, string? Error, bool Rejected)> SendAsync(WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        try { await _policy.ValidateAsync(delivery.Url, cancellationToken); }
        catch (WebhookUrlException e) { return (null, $"url_{e.Reason.SnakeCase()}: {e.Message}", !e.IsTransient); }

        var secret = (_secrets is null ? null : await _secrets.FindAsync(delivery.JobId, cancellationToken)) ?? _options.SigningSecret;
        var headers = WebhookSigner.CreateHeaders(secret, delivery.EventId, _time.GetUtcNow(), delivery.Payload);
        using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Url)
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(delivery.Payload)),
        };
        request.Content.Headers.ContentType = new("application/json") { CharSet = "utf-8" };
        request.Headers.TryAddWithoutValidation(WebhookSigner.IdHeader, headers.Id);
        request.Headers.TryAddWithoutValidation(WebhookSigner.TimestampHeader, headers.Timestamp);
        request.Headers.TryAddWithoutValidation(WebhookSigner.SignatureHeader, headers.Signature);
        request.Headers.TryAddWithoutValidation("User-Agent", _options.UserAgent);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Timeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            return ((int)response.StatusCode, null, false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"timeout: no answer within {_options.Timeout.TotalSeconds:0.###} s", false);
        }
        catch (HttpRequestException e) when (e.InnerException is WebhookUrlException url) // the check passed, the name then resolved elsewhere
        {
            return (null, $"url_{url.Reason.SnakeCase()}: {(url.IsTransient ? "at" : "refused at")} connect: {url.Message}", !url.IsTransient);
        }
        catch (HttpRequestException e)
        {
            return (null, $"connection: {e.HttpRequestError.SnakeCase()}: {e.Message}", false);
        }
    }

    private async Task DeliverSafelyAsync(ReceivedMessage message, CancellationToken cancellationToken)
    {
        try { await DeliverAsync(message, cancellationToken); }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
        catch (Exception e) { _onError?.Invoke(message, e); }
    }
}
