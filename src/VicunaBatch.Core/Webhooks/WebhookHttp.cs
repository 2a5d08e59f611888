using System.Net;
using System.Net.Sockets;

namespace VicunaBatch.Core.Webhooks;

/// <summary>The HTTP side of webhook delivery.</summary>
public static class WebhookHttp
{
    /// <summary>
    /// A handler for the deliverer's <see cref="HttpClient"/> that resolves each host through
    /// <paramref name="policy"/> and connects only to an address the policy allows, so a name that
    /// re-resolves to a private address after validation (DNS rebinding) is refused at connect time.
    /// Redirects are not followed (a 3xx is a failed attempt), and no proxy is used.
    /// A refused address surfaces as an <see cref="HttpRequestException"/> whose inner exception is
    /// a <see cref="WebhookUrlException"/>.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(WebhookUrlPolicy policy) => new()
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await policy.ResolveAllowedAsync(context.DnsEndPoint.Host, cancellationToken);
            Exception? last = null;
            foreach (var address in addresses)
            {
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    last = e;
                }
            }
            throw last!;
        },
    };
}
