using System.Diagnostics;
using System.Globalization;

namespace VicunaBatch.Cli;

/// <summary>
/// A one-line progress bar on stderr (requests done/failed, tokens/s, ETA), redrawn at most 4 times a second; silent when
/// stderr is redirected. The first report's count is where this process started (a resumed job's earlier requests): the
/// ETA runs on the rate of what is done since.
/// </summary>
internal sealed class ProgressLine(long total)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _enabled = !Console.IsErrorRedirected;
    private long _lastDrawMs = -1000;
    private long? _doneAtStart;

    public void Report(long done, long tokens, long failed = 0, bool force = false)
    {
        _doneAtStart ??= done;
        var now = _clock.ElapsedMilliseconds;
        if (!_enabled || (!force && now - _lastDrawMs < 250))
        {
            return;
        }
        _lastDrawMs = now;
        Console.Error.Write("\r" + Format(done, failed, total, tokens, _clock.Elapsed, _doneAtStart.Value) + "\u001b[K");
    }

    public void Clear()
    {
        if (_enabled)
        {
            Console.Error.Write("\r\u001b[K");
        }
    }

    /// <param name="done">Requests done (succeeded or failed) in all, with <paramref name="doneAtStart"/> of them before this process.</param>
    /// <param name="tokens">Output tokens made by this process.</param>
    internal static string Format(long done, long failed, long total, long tokens, TimeSpan elapsed, long doneAtStart = 0)
    {
        const int width = 30;
        var fraction = total == 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        var filled = (int)Math.Round(fraction * width);
        var seconds = Math.Max(elapsed.TotalSeconds, 1e-3);
        var doneHere = done - doneAtStart;
        var eta = doneHere <= 0 ? "--:--" : Duration(TimeSpan.FromSeconds(seconds / doneHere * Math.Max(total - done, 0)));
        return string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', width - filled)}] {done}/{total} done, {failed} failed | {tokens / seconds:F0} tok/s | ETA {eta}");
    }

    /// <summary>mm:ss under an hour, h:mm:ss from there (a 13B job on a CPU runs for hours).</summary>
    private static string Duration(TimeSpan t) => t.TotalHours >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}")
        : t.ToString(@"mm\:ss", CultureInfo.InvariantCulture);
}
