using System.Net;
using VicunaBatch.Local.Tests;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// API keys out of the process list (issue 22, item 7): <c>--api-key-file</c> for <c>serve</c> and the client commands,
/// and one line on stderr when a key is given with <c>--api-key</c>, which every user's <c>ps</c> shows.
/// </summary>
public sealed class ApiKeyFileTests : IDisposable
{
    private const string KeyA = "vb-key-file-tenant-a-8e21";
    private const string KeyB = "vb-key-file-tenant-b-5c07";
    private const string ServeWarning =
        "--api-key: a key on the command line is visible to every user of this machine in the process list (ps); give it with --api-key-file FILE or VICUNABATCH_API_KEYS instead";
    private const string ClientWarning =
        "--api-key: a key on the command line is visible to every user of this machine in the process list (ps); give it with --api-key-file FILE or VICUNABATCH_API_KEY instead";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string Data => Path.Combine(_folder.Root, "data");

    private string WriteKeyFile(string name, string text, string mode = "600")
    {
        var path = Path.Combine(_folder.Root, name);
        File.WriteAllText(path, text);
        UnixModes.Set(path, mode);
        return path;
    }

    [Fact]
    public async Task Serve_takes_one_key_a_line_from_its_key_file_and_says_nothing_of_the_process_list()
    {
        var keys = WriteKeyFile("keys", $"# one key a line, each its own tenant\n\n{KeyA}\n   {KeyB}  \n# retired: vb-old-key-0000\n");

        using var serve = await ServeProcess.StartWithArgsAsync(_folder.Root, KeyA, null, "--port", "0", "--data", Data, "--api-key-file", keys);

        foreach (var key in new[] { KeyA, KeyB })
            Assert.Equal(HttpStatusCode.OK, (await serve.SendAsync(HttpMethod.Get, "/v1/batches", key: key)).StatusCode);
        foreach (var notKey in new[] { "# one key a line, each its own tenant", "# retired: vb-old-key-0000", "vb-old-key-0000" })
            Assert.Equal(HttpStatusCode.Unauthorized, (await serve.SendAsync(HttpMethod.Get, "/v1/batches", key: notKey)).StatusCode);
        serve.Process.Kill();
        Assert.DoesNotContain("process list", serve.Logs);
        Assert.DoesNotContain(KeyA, serve.Logs);
        Assert.DoesNotContain(KeyB, serve.Logs);
    }

    [Fact]
    public async Task Serve_with_a_key_on_the_command_line_says_once_that_the_process_list_shows_it()
    {
        using var serve = await ServeProcess.StartAsync(_folder.Root, Data, KeyA);
        for (var i = 0; i < 100 && !serve.Logs.Contains("serving the batch API"); i++) await Task.Delay(50);
        serve.Process.Kill();

        Assert.Single(serve.Process.Stderr.Split('\n'), l => l.Trim() == ServeWarning);
        Assert.DoesNotContain(KeyA, serve.Logs);
    }

    [UnixFact]
    public async Task A_key_file_other_users_may_read_is_refused_with_the_chmod_to_run_and_makes_no_data_folder()
    {
        var keys = WriteKeyFile("keys", KeyA + "\n", "644");

        using var serve = CliProcess.Start(_folder.Root, ["serve", "--port", "0", "--data", Data, "--api-key-file", keys]);

        Assert.Equal(2, await serve.WaitForExitAsync(Timeout));
        Assert.Equal($"vicuna-batch: --api-key-file {keys} is open to other users (mode 644): chmod 600 {keys}", serve.Stderr.Trim());
        Assert.False(Directory.Exists(Data));
    }

    [Fact]
    public async Task A_key_file_without_a_key_is_refused()
    {
        var keys = WriteKeyFile("keys", "# none yet\n\n");

        using var serve = CliProcess.Start(_folder.Root, ["serve", "--port", "0", "--data", Data, "--api-key-file", keys]);

        Assert.Equal(2, await serve.WaitForExitAsync(Timeout));
        Assert.Equal($"vicuna-batch: --api-key-file {keys} holds no key (one a line; blank lines and lines that start with # are skipped)", serve.Stderr.Trim());
    }

    [Fact]
    public async Task The_client_commands_take_their_key_from_a_file_and_say_when_it_is_on_the_command_line()
    {
        using var serve = await ServeProcess.StartAsync(_folder.Root, Data, KeyA);
        var url = serve.Http.BaseAddress!.ToString();
        var keyFile = WriteKeyFile("client-key", $"# the docs team's key\n{KeyA}\n");

        var fromFile = await CliProcess.RunAsync(_folder.Root, Timeout, "status", "--url", url, "--api-key-file", keyFile);
        var onCommandLine = await CliProcess.RunAsync(_folder.Root, Timeout, "status", "--url", url, "--api-key", KeyA);
        var twoKeys = await CliProcess.RunAsync(_folder.Root, Timeout, "status", "--url", url, "--api-key-file", WriteKeyFile("two", $"{KeyA}\n{KeyB}\n"));

        Assert.Equal((0, "no batches yet", ""), (fromFile.ExitCode, fromFile.Stdout.Trim(), fromFile.Stderr));
        Assert.Equal((0, "no batches yet", ClientWarning), (onCommandLine.ExitCode, onCommandLine.Stdout.Trim(), onCommandLine.Stderr.Trim()));
        Assert.Equal(2, twoKeys.ExitCode);
        Assert.Equal($"vicuna-batch: --api-key-file {Path.Combine(_folder.Root, "two")} holds 2 keys; a client sends one: give a file with one", twoKeys.Stderr.Trim());
    }
}
