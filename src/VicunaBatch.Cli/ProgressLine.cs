using System.Diagnostics;
using System.Globalization;

namespace VicunaBatch.Cli;

/// <summary>A one-line progress bar on stderr (requests done/failed, tokens/s, ETA), redrawn at most 4 times a second; silent when stderr is redirected.</summary>
internal sealed class ProgressLine(long total)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _enabled = !Console.IsErrorRedirected;
    private long _lastDrawMs = -1000;

    public void Report(long done, long tokens, long failed = 0, bool force = false)
    {
        var now = _clock.ElapsedMilliseconds;
        if (!_enabled || (!force && now - _lastDrawMs < 250))
        {
            return;
        }
        _lastDrawMs = now;
        Console.Error.Write("\r" + Format(done, failed, total, tokens, _clock.Elapsed) + "\u001b[K");
    }

    public void Clear()
    {
        if (_enabled)
        {
            Console.Error.Write("\r\u001b[K");
        }
    }

    internal static string Format(long done, long failed, long total, long tokens, TimeSpan elapsed)
    {
        const int width = 30;
        var fraction = total == 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        var filled = (int)Math.Round(fraction * width);
        var seconds = Math.Max(elapsed.TotalSeconds, 1e-3);
        var eta = done == 0 ? "--:--" : TimeSpan.FromSeconds(seconds / done * (total - done)).ToString(@"mm\:ss", CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', width - filled)}] {done}/{total} done, {failed} failed | {tokens / seconds:F0} tok/s | ETA {eta}");
    }
}
