using Microsoft.Data.Sqlite;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local;

/// <summary>Options of <see cref="SqliteWorkQueue"/>.</summary>
public sealed class SqliteWorkQueueOptions
{
    /// <summary>SQLite database file (created if missing). Required.</summary>
    public required string DatabasePath { get; init; }

    /// <summary>Queue name; several queues may share one database. Default "shards".</summary>
    public string QueueName { get; init; } = "shards";

    /// <summary>How long a received message stays invisible to other receivers. Default 60 s.</summary>
    public TimeSpan LockDuration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a call waits for another process's write lock. Default 30 s.</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// This process's lease in the data folder: the locks it takes are recorded as its, and locks of receivers whose
    /// lease is no longer held (their process died) are released at the next receive. Null: locks only expire.
    /// </summary>
    public ReceiverLease? Lease { get; init; }

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(DatabasePath);
        ArgumentException.ThrowIfNullOrEmpty(QueueName);
        if (LockDuration <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(LockDuration), LockDuration, "must be > 0");
        if (BusyTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(BusyTimeout), BusyTimeout, "must be >= 0");
    }
}

/// <summary>A dead-lettered message with the reason it was given.</summary>
public sealed record DeadLetter(string MessageId, string Body, int DeliveryCount, string Reason, DateTimeOffset DeadLetteredAt);

/// <summary>
/// Durable peek-lock queue in SQLite (WAL). A message row is locked by setting <c>visible_at</c> to
/// now + lock duration, a fresh <c>lock_token</c> and the receiver's lease id (<c>lock_owner</c>); receive claims
/// visible rows in one atomic UPDATE … RETURNING, so concurrent receivers (threads or processes) never share a message,
/// and first releases the locks of receivers that died (<see cref="SqliteWorkQueueOptions.Lease"/>).
/// Settling requires the token and an unexpired lock, else <see cref="WorkQueueFailure.LockLost"/>.
/// Sending a message id that is still queued is ignored (duplicate detection). Receivers in this process waiting in
/// <see cref="WaitForMessagesAsync"/> wake as soon as a message is sent or released here. Times come from the
/// injected <see cref="TimeProvider"/> (milliseconds since the Unix epoch).
/// </summary>
public sealed class SqliteWorkQueue : IWorkQueue
{
    private readonly SqliteWorkQueueOptions _options;
    private readonly TimeProvider _time;
    private readonly string _connectionString;
    private readonly QueueSignal _signal;
    private readonly ReceiverLiveness? _liveness;
    private long _signalSeen;

    public SqliteWorkQueue(SqliteWorkQueueOptions options, TimeProvider time)
    {
        options.Validate();
        (_options, _time) = (options, time);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = options.DatabasePath, Mode = SqliteOpenMode.ReadWriteCreate,
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
        }.ToString();
        _signal = QueueSignal.For(options.DatabasePath, options.QueueName);
        _liveness = options.Lease is { } lease ? new ReceiverLiveness(lease) : null;
        using var connection = Open();
        Execute(connection, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS messages (
                queue TEXT NOT NULL, message_id TEXT NOT NULL, body TEXT NOT NULL, enqueued_at INTEGER NOT NULL,
                visible_at INTEGER NOT NULL, delivery_count INTEGER NOT NULL DEFAULT 0, lock_token TEXT,
                PRIMARY KEY (queue, message_id));
            CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at);
            CREATE TABLE IF NOT EXISTS dead_letters (
                queue TEXT NOT NULL, message_id TEXT NOT NULL, body TEXT NOT NULL, delivery_count INTEGER NOT NULL,
                reason TEXT NOT NULL, dead_lettered_at INTEGER NOT NULL);
            """);
        AddLockOwnerColumn(connection);
    }

    /// <summary>Databases made before receivers were recorded get the column (NULL: a lock that only expires).</summary>
    private static void AddLockOwnerColumn(SqliteConnection connection)
    {
        using var columns = connection.CreateCommand();
        columns.CommandText = "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'lock_owner'";
        if (Convert.ToInt32(columns.ExecuteScalar()) == 0) Execute(connection, "ALTER TABLE messages ADD COLUMN lock_owner TEXT");
    }

    public Task SendAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default) => RunAsync(connection =>
    {
        using var transaction = connection.BeginTransaction();
        using var command = Command(connection, """
            INSERT OR IGNORE INTO messages (queue, message_id, body, enqueued_at, visible_at)
            VALUES ($queue, $id, $body, $now, $now)
            """);
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var body = command.Parameters.Add("$body", SqliteType.Text);
        foreach (var message in messages)
        {
            (id.Value, body.Value) = (message.MessageId, message.Body);
            command.ExecuteNonQuery();
        }
        transaction.Commit();
        _signal.Pulse();
        return 0;
    }, cancellationToken);

    public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken = default) => RunAsync(connection =>
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        Volatile.Write(ref _signalSeen, _signal.Version);
        if (_liveness is not null && ReleaseLocksOfDeadReceivers(connection) > 0) _signal.Pulse();
        var lockedUntil = Now() + (long)_options.LockDuration.TotalMilliseconds;
        using var command = Command(connection, """
            UPDATE messages SET delivery_count = delivery_count + 1, visible_at = $until, lock_token = lower(hex(randomblob(16))), lock_owner = $owner
            WHERE rowid IN (SELECT rowid FROM messages WHERE queue = $queue AND visible_at <= $now
                            ORDER BY enqueued_at, rowid LIMIT $max)
            RETURNING message_id, body, delivery_count, lock_token, enqueued_at, rowid
            """);
        command.Parameters.AddWithValue("$until", lockedUntil);
        command.Parameters.AddWithValue("$max", maxMessages);
        command.Parameters.AddWithValue("$owner", (object?)_options.Lease?.Id ?? DBNull.Value);
        var rows = new List<(long EnqueuedAt, long RowId, ReceivedMessage Message)>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
            rows.Add((reader.GetInt64(4), reader.GetInt64(5), new ReceivedMessage(reader.GetString(0), reader.GetString(1),
                reader.GetInt32(2), reader.GetString(3), DateTimeOffset.FromUnixTimeMilliseconds(lockedUntil))
            { EnqueuedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)) }));
        return (IReadOnlyList<ReceivedMessage>)rows.OrderBy(r => r.EnqueuedAt).ThenBy(r => r.RowId).Select(r => r.Message).ToList();
    }, cancellationToken);

    public Task CompleteAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        SettleAsync(message, "complete", "DELETE FROM messages WHERE " + LockedRow, cancellationToken);

    public async Task AbandonAsync(ReceivedMessage message, CancellationToken cancellationToken = default)
    {
        await SettleAsync(message, "abandon", "UPDATE messages SET visible_at = $now, lock_token = NULL, lock_owner = NULL WHERE " + LockedRow, cancellationToken);
        _signal.Pulse();
    }

    /// <summary>Releases the lock; the message becomes visible again <paramref name="delay"/> from now.</summary>
    public Task AbandonAsync(ReceivedMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        SettleAsync(message, "abandon", $"UPDATE messages SET visible_at = $now + {(long)Math.Max(0, delay.TotalMilliseconds)}, lock_token = NULL, lock_owner = NULL WHERE "
            + LockedRow, cancellationToken);

    public Task DeadLetterAsync(ReceivedMessage message, string reason, CancellationToken cancellationToken = default) => RunAsync(connection =>
    {
        using var transaction = connection.BeginTransaction();
        using (var insert = Command(connection, """
            INSERT INTO dead_letters (queue, message_id, body, delivery_count, reason, dead_lettered_at)
            SELECT queue, message_id, body, delivery_count, $reason, $now FROM messages WHERE
            """ + " " + LockedRow))
        {
            AddLock(insert, message);
            insert.Parameters.AddWithValue("$reason", reason);
            if (insert.ExecuteNonQuery() == 0) throw LockLost(message, "dead-letter");
        }
        using (var delete = Command(connection, "DELETE FROM messages WHERE " + LockedRow))
        {
            AddLock(delete, message);
            delete.ExecuteNonQuery();
        }
        transaction.Commit();
        return 0;
    }, cancellationToken);

    public Task<DateTimeOffset> RenewLockAsync(ReceivedMessage message, CancellationToken cancellationToken = default) => RunAsync(connection =>
    {
        var lockedUntil = Now() + (long)_options.LockDuration.TotalMilliseconds;
        using var command = Command(connection, "UPDATE messages SET visible_at = $until WHERE " + LockedRow);
        AddLock(command, message);
        command.Parameters.AddWithValue("$until", lockedUntil);
        if (command.ExecuteNonQuery() == 0) throw LockLost(message, "renew the lock of");
        return DateTimeOffset.FromUnixTimeMilliseconds(lockedUntil);
    }, cancellationToken);

    /// <inheritdoc/>
    public async Task WaitForMessagesAsync(TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        var next = _signal.Next;
        if (_signal.Version != Volatile.Read(ref _signalSeen)) return; // a message came since the last receive began
        await Task.WhenAny(next, Task.Delay(maxWait, _time, cancellationToken));
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Releases, at once, the locks held by receivers of this data folder whose lease is no longer held (see
    /// <see cref="ReceiverLease"/>); returns how many messages became visible.
    /// </summary>
    private int ReleaseLocksOfDeadReceivers(SqliteConnection connection)
    {
        var owners = new List<string>();
        using (var select = Command(connection, """
            SELECT DISTINCT lock_owner FROM messages
            WHERE queue = $queue AND lock_token IS NOT NULL AND visible_at > $now AND lock_owner IS NOT NULL AND lock_owner <> $me
            """))
        {
            select.Parameters.AddWithValue("$me", _options.Lease!.Id);
            using var reader = select.ExecuteReader();
            while (reader.Read()) owners.Add(reader.GetString(0));
        }
        int released = 0;
        foreach (var owner in owners)
        {
            if (_liveness!.IsAlive(owner)) continue;
            using var release = Command(connection, "UPDATE messages SET visible_at = $now, lock_token = NULL, lock_owner = NULL WHERE queue = $queue AND lock_owner = $owner");
            release.Parameters.AddWithValue("$owner", owner);
            released += release.ExecuteNonQuery();
        }
        return released;
    }

    /// <summary>Messages waiting or locked (not dead-lettered): the queue depth.</summary>
    public Task<int> CountAsync(CancellationToken cancellationToken = default) => RunAsync(connection =>
    {
        using var command = Command(connection, "SELECT count(*) FROM messages WHERE queue = $queue");
        return Convert.ToInt32(command.ExecuteScalar());
    }, cancellationToken);

    public Task<IReadOnlyList<DeadLetter>> ReadDeadLettersAsync(CancellationToken cancellationToken = default) => RunAsync(connection =>
    {
        using var command = Command(connection, """
            SELECT message_id, body, delivery_count, reason, dead_lettered_at FROM dead_letters WHERE queue = $queue ORDER BY rowid
            """);
        var letters = new List<DeadLetter>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
            letters.Add(new DeadLetter(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetString(3),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4))));
        return (IReadOnlyList<DeadLetter>)letters;
    }, cancellationToken);

    private const string LockedRow = "queue = $queue AND message_id = $id AND lock_token = $token AND visible_at > $now";

    private Task SettleAsync(ReceivedMessage message, string verb, string sql, CancellationToken cancellationToken) => RunAsync(connection =>
    {
        using var command = Command(connection, sql);
        AddLock(command, message);
        if (command.ExecuteNonQuery() == 0) throw LockLost(message, verb);
        return 0;
    }, cancellationToken);

    private static void AddLock(SqliteCommand command, ReceivedMessage message)
    {
        command.Parameters.AddWithValue("$id", message.MessageId);
        command.Parameters.AddWithValue("$token", message.LockToken);
    }

    private static WorkQueueException LockLost(ReceivedMessage message, string verb) => new(WorkQueueFailure.LockLost, message.MessageId,
        $"cannot {verb} message {message.MessageId}: its lock (token {message.LockToken}) expired or it was settled or redelivered");

    private SqliteCommand Command(SqliteConnection connection, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$queue", _options.QueueName);
        command.Parameters.AddWithValue("$now", Now());
        return command;
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, $"PRAGMA busy_timeout = {(long)_options.BusyTimeout.TotalMilliseconds};");
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Runs one operation on a pooled connection off the caller's thread; maps SQLite failures. Pooled, because
    /// closing a WAL database's last connection checkpoints it and deletes its -wal and -shm files, which the next
    /// call would then make again (and a WAL checkpoint every call).
    /// </summary>
    private Task<T> RunAsync<T>(Func<SqliteConnection, T> operation, CancellationToken cancellationToken) => Task.Run(() =>
    {
        try
        {
            using var connection = Open();
            return operation(connection);
        }
        catch (SqliteException e)
        {
            throw new WorkQueueException(WorkQueueFailure.Unavailable, "", $"SQLite queue {_options.DatabasePath} failed: {e.Message}", e);
        }
    }, cancellationToken);
}
