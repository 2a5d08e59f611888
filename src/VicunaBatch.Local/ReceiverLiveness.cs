namespace VicunaBatch.Local;

/// <summary>
/// Whether the receivers that hold locks in a data folder's queues still live (<see cref="ReceiverLease.IsHeld"/>),
/// asked at each receive: a live one's answer is reused for <see cref="RecheckAfterMs"/> of real time (processes live
/// and die in real time, whatever clock the queue is given), so a receive costs at most one file open per other
/// receiver a second.
/// </summary>
internal sealed class ReceiverLiveness(ReceiverLease own)
{
    public const long RecheckAfterMs = 1000;

    private readonly Dictionary<string, long> _aliveUntil = new(StringComparer.Ordinal);

    public bool IsAlive(string receiverId)
    {
        if (receiverId == own.Id) return true;
        var now = Environment.TickCount64;
        lock (_aliveUntil)
        {
            if (_aliveUntil.TryGetValue(receiverId, out var until) && now < until) return true;
        }
        var alive = ReceiverLease.IsHeld(own.Folder, receiverId);
        lock (_aliveUntil)
        {
            if (alive) _aliveUntil[receiverId] = now + RecheckAfterMs;
            else _aliveUntil.Remove(receiverId);
        }
        return alive;
    }
}
