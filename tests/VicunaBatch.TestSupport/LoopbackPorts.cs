using System.Net;
using System.Net.Sockets;

namespace VicunaBatch.Testing;

/// <summary>Ports on 127.0.0.1 for servers a test starts, or for one it wants refused.</summary>
public static class LoopbackPorts
{
    /// <summary>A TCP port on 127.0.0.1 the system just handed out and nothing listens on now (connection refused).</summary>
    public static int Free()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}
