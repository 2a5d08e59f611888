using System.Diagnostics;
using System.Globalization;

namespace VicunaBatch.Cli;

/// <summary>
/// Progress on stderr (requests done/failed, tokens/s, ETA). On a terminal, a one-line bar redrawn at most 4 times a
/// second. Redirected (a log file, CI, a service's journal), a plain line every <see cref="LogInterval"/>, the first one
/// after that long, so a short job logs none and a long one shows it is moving. The first report's count is where this
/// process started (a resumed job's earlier requests): the ETA runs on the rate of what is done since.
/// </summary>
internal sealed class ProgressLine
{
    /// <summary>How often a redirected stderr gets a progress line.</summary>
    public static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan RedrawInterval = TimeSpan.FromMilliseconds(250);

    private readonly long _total;
    private readonly TextWriter _writer;
    private readonly bool _interactive;
    private readonly Func<TimeSpan> _elapsed;
    private TimeSpan _lastWrite;
    private long? _doneAtStart;

    public ProgressLine(long total)
        : this(total, Console.Error, interactive: !Console.IsErrorRedirected, StartClock())
    {
    }

    private static Func<TimeSpan> StartClock()
    {
        var clock = Stopwatch.StartNew();
        return () => clock.Elapsed;
    }

    /// <param name="elapsed">Time since the progress began (tests: a clock of their own).</param>
    internal ProgressLine(long total, TextWriter writer, bool interactive, Func<TimeSpan> elapsed)
    {
        _total = total;
        _writer = writer;
        _interactive = interactive;
        _elapsed = elapsed;
        _lastWrite = interactive ? -RedrawInterval : TimeSpan.Zero;
    }

    public void Report(long done, long tokens, long failed = 0, bool force = false)
    {
        _doneAtStart ??= done;
        var now = _elapsed();
        if (!force && now - _lastWrite < (_interactive ? RedrawInterval : LogInterval))
        {
            return;
        }
        _lastWrite = now;
        if (_interactive)
        {
            _writer.Write("\r" + Format(done, failed, _total, tokens, now, _doneAtStart.Value) + "\u001b[K");
        }
        else
        {
            _writer.WriteLine(Counts(done, failed, _total, tokens, now, _doneAtStart.Value));
        }
    }

    /// <summary>Takes the bar off the terminal's line before the command prints its result; a log keeps its lines.</summary>
    public void Clear()
    {
        if (_interactive)
        {
            _writer.Write("\r\u001b[K");
        }
    }

    /// <param name="done">Requests done (succeeded or failed) in all, with <paramref name="doneAtStart"/> of them before this process.</param>
    /// <param name="tokens">Output tokens made by this process.</param>
    internal static string Format(long done, long failed, long total, long tokens, TimeSpan elapsed, long doneAtStart = 0)
    {
        const int width = 30;
        var fraction = total == 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        var filled = (int)Math.Round(fraction * width);
        return $"[{new string('#', filled)}{new string('.', width - filled)}] {Counts(done, failed, total, tokens, elapsed, doneAtStart)}";
    }

    /// <summary>The bar's text without the bar: a log line.</summary>
    internal static string Counts(long done, long failed, long total, long tokens, TimeSpan elapsed, long doneAtStart = 0)
    {
        var seconds = Math.Max(elapsed.TotalSeconds, 1e-3);
        var doneHere = done - doneAtStart;
        var eta = doneHere <= 0 ? "--:--" : Duration(TimeSpan.FromSeconds(seconds / doneHere * Math.Max(total - done, 0)));
        return string.Create(CultureInfo.InvariantCulture, $"{done}/{total} done, {failed} failed | {tokens / seconds:F0} tok/s | ETA {eta}");
    }

    /// <summary>mm:ss under an hour, h:mm:ss from there (a 13B job on a CPU runs for hours).</summary>
    private static string Duration(TimeSpan t) => t.TotalHours >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}")
        : t.ToString(@"mm\:ss", CultureInfo.InvariantCulture);
}

/// <summary>
/// What a command is waiting for before its progress bar can start (the model loading, the input being validated and
/// queued), with the seconds it has waited. Nothing for the first second, so a quick start shows none; then on a
/// terminal the line is redrawn in place, and a redirected stderr gets a line every <see cref="ProgressLine.LogInterval"/>.
/// A 13B package on a CPU takes minutes to load, and a silent terminal looks like a hung one.
/// </summary>
internal sealed class WaitingLine
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RedrawInterval = TimeSpan.FromMilliseconds(250);

    private readonly TextWriter _writer;
    private readonly bool _interactive;
    private readonly Func<TimeSpan> _elapsed;
    private readonly Lock _lock = new();
    private TimeSpan _lastWrite;
    private bool _shown;
    private string? _drawn;
    private bool _done;

    public WaitingLine()
        : this(Console.Error, interactive: !Console.IsErrorRedirected, StartClock())
    {
    }

    private static Func<TimeSpan> StartClock()
    {
        var clock = Stopwatch.StartNew();
        return () => clock.Elapsed;
    }

    /// <param name="elapsed">Time since the wait began (tests: a clock of their own).</param>
    internal WaitingLine(TextWriter writer, bool interactive, Func<TimeSpan> elapsed)
    {
        _writer = writer;
        _interactive = interactive;
        _elapsed = elapsed;
    }

    /// <summary>Shows <paramref name="what"/> (e.g. "loading the model") if the wait has lasted long enough to say so.</summary>
    public void Report(string what)
    {
        lock (_lock)
        {
            var now = _elapsed();
            var text = string.Create(CultureInfo.InvariantCulture, $"{what} ({(long)now.TotalSeconds} s)");
            var due = _interactive
                ? now >= Quiet && (!_shown || (text != _drawn && now - _lastWrite >= RedrawInterval))
                : now - _lastWrite >= ProgressLine.LogInterval;
            if (_done || !due)
            {
                return;
            }
            _lastWrite = now;
            _shown = true;
            _drawn = text;
            if (_interactive) _writer.Write("\r" + text + "\u001b[K");
            else _writer.WriteLine(text);
        }
    }

    /// <summary>A line of its own (the waiting line, if shown, is drawn again at the next report).</summary>
    public void Note(string text)
    {
        lock (_lock)
        {
            if (_interactive && _shown && !_done) _writer.Write("\r\u001b[K");
            _writer.WriteLine(text);
            _shown = false;
        }
    }

    /// <summary>The wait is over: takes the line off a terminal, and nothing is shown after this.</summary>
    public void Done()
    {
        lock (_lock)
        {
            if (_done) return;
            _done = true;
            if (_interactive && _shown) _writer.Write("\r\u001b[K");
        }
    }
}
