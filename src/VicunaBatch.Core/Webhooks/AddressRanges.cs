using System.Net;
using static VicunaBatch.Core.Webhooks.EmbeddedIPv4;
using static VicunaBatch.Core.Webhooks.WebhookUrlRejection;

namespace VicunaBatch.Core.Webhooks;

/// <summary>Where an IPv6 address carries an IPv4 address.</summary>
internal enum EmbeddedIPv4
{
    None,
    /// <summary>IPv4-mapped (::ffff:0:0/96): the address is the IPv4 address in its last 32 bits, judged exactly as that.</summary>
    Mapped,
    /// <summary>The last 32 bits (IPv4-compatible, SIIT, the NAT64 /96 of RFC 6052).</summary>
    Last32,
    /// <summary>Bits 16–47 (6to4, RFC 3056).</summary>
    SixToFour,
    /// <summary>The client, XOR ffff:ffff, in the last 32 bits and the server in bits 32–63 (Teredo, RFC 4380).</summary>
    Teredo,
}

/// <param name="Cidr">As IANA writes it; <see cref="Network"/> parsed from it.</param>
/// <param name="Reason">Why the range is refused; null when it is not refused for itself (an IPv4-mapped or
/// NAT64 address is then judged by what it embeds).</param>
internal sealed record AddressRange(string Cidr, string Name, WebhookUrlRejection? Reason, EmbeddedIPv4 Embedded)
{
    public IPNetwork Network { get; } = IPNetwork.Parse(Cidr);

    /// <summary>Bit by bit, same family only: <see cref="IPNetwork.Contains"/> also matches an IPv4-mapped
    /// address against IPv4 networks, and here ::ffff:0:0/96 must be told apart.</summary>
    public bool Contains(IPAddress address)
    {
        if (address.AddressFamily != Network.BaseAddress.AddressFamily) return false;
        Span<byte> a = stackalloc byte[16], n = stackalloc byte[16];
        address.TryWriteBytes(a, out _);
        Network.BaseAddress.TryWriteBytes(n, out _);
        int whole = Network.PrefixLength / 8, rest = Network.PrefixLength % 8;
        if (!a[..whole].SequenceEqual(n[..whole])) return false;
        return rest == 0 || ((a[whole] ^ n[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
    }

    /// <summary>The IPv4 addresses <paramref name="address"/> (in this range) carries: the client first for Teredo.</summary>
    public IReadOnlyList<IPAddress> EmbeddedAddresses(IPAddress address)
    {
        if (Embedded == None) return [];
        Span<byte> b = stackalloc byte[16]; // [16] network order
        address.TryWriteBytes(b, out _);
        return Embedded switch
        {
            SixToFour => [new IPAddress(b[2..6])],
            Teredo => [new IPAddress([(byte)~b[12], (byte)~b[13], (byte)~b[14], (byte)~b[15]]), new IPAddress(b[4..8])],
            _ => [new IPAddress(b[12..16])],
        };
    }

    public override string ToString() => $"{Cidr} {Name}";
}

/// <summary>
/// The IANA IPv4 and IPv6 Special-Purpose Address Registries (as of 2026), multicast, and the IPv6 space IANA holds
/// reserved (everything outside 2000::/3 that no other entry names). An address belongs to the longest prefix that
/// holds it; one in no range is public unicast. <see cref="WebhookUrlPolicy"/> decides what each reason means.
/// </summary>
internal static class AddressRanges
{
    public static readonly IReadOnlyList<AddressRange> All =
    [
        R("0.0.0.0/8", "this network", Unspecified),
        R("10.0.0.0/8", "private use", PrivateNetwork),
        R("100.64.0.0/10", "shared address space (carrier-grade NAT)", PrivateNetwork),
        R("127.0.0.0/8", "loopback", Loopback),
        R("169.254.0.0/16", "link local (cloud metadata: 169.254.169.254)", LinkLocal),
        R("172.16.0.0/12", "private use", PrivateNetwork),
        R("192.0.0.0/24", "IETF protocol assignments", SpecialPurpose),
        R("192.0.0.0/29", "IPv4 service continuity prefix", SpecialPurpose),
        R("192.0.0.8/32", "IPv4 dummy address", SpecialPurpose),
        R("192.0.0.9/32", "Port Control Protocol anycast", SpecialPurpose),
        R("192.0.0.10/32", "TURN anycast", SpecialPurpose),
        R("192.0.0.170/31", "NAT64/DNS64 discovery", SpecialPurpose),
        R("192.0.2.0/24", "documentation (TEST-NET-1)", SpecialPurpose),
        R("192.31.196.0/24", "AS112-v4", SpecialPurpose),
        R("192.52.193.0/24", "AMT", SpecialPurpose),
        R("192.88.99.0/24", "6to4 relay anycast (deprecated)", SpecialPurpose),
        R("192.168.0.0/16", "private use", PrivateNetwork),
        R("192.175.48.0/24", "direct delegation AS112 service", SpecialPurpose),
        R("198.18.0.0/15", "benchmarking", SpecialPurpose),
        R("198.51.100.0/24", "documentation (TEST-NET-2)", SpecialPurpose),
        R("203.0.113.0/24", "documentation (TEST-NET-3)", SpecialPurpose),
        R("224.0.0.0/4", "multicast", Reserved),
        R("240.0.0.0/4", "reserved", Reserved),
        R("255.255.255.255/32", "limited broadcast", Reserved),

        R("::/128", "unspecified", Unspecified),
        R("::1/128", "loopback", Loopback),
        R("::/96", "IPv4-compatible (deprecated)", Transition, Last32),
        R("::ffff:0:0/96", "IPv4-mapped", null, Mapped),
        R("::ffff:0:0:0/96", "SIIT IPv4-translated (obsolete)", Transition, Last32),
        R("64:ff9b::/96", "NAT64 well-known prefix", null, Last32),
        R("64:ff9b:1::/48", "NAT64 local-use prefix", Transition),
        R("100::/64", "discard-only", SpecialPurpose),
        R("100:0:0:1::/64", "dummy IPv6 prefix", SpecialPurpose),
        R("2001::/23", "IETF protocol assignments", SpecialPurpose),
        R("2001::/32", "Teredo", Transition, Teredo),
        R("2001:1::1/128", "Port Control Protocol anycast", SpecialPurpose),
        R("2001:1::2/128", "TURN anycast", SpecialPurpose),
        R("2001:1::3/128", "DNS-SD service registration protocol anycast", SpecialPurpose),
        R("2001:2::/48", "benchmarking", SpecialPurpose),
        R("2001:3::/32", "AMT", SpecialPurpose),
        R("2001:4:112::/48", "AS112-v6", SpecialPurpose),
        R("2001:10::/28", "ORCHID (deprecated)", SpecialPurpose),
        R("2001:20::/28", "ORCHIDv2", SpecialPurpose),
        R("2001:30::/28", "drone remote ID entity tags", SpecialPurpose),
        R("2001:db8::/32", "documentation", SpecialPurpose),
        R("2002::/16", "6to4", Transition, SixToFour),
        R("2620:4f:8000::/48", "direct delegation AS112 service", SpecialPurpose),
        R("3fff::/20", "documentation", SpecialPurpose),
        R("5f00::/16", "SRv6 SIDs", SpecialPurpose),
        R("fc00::/7", "unique local", PrivateNetwork),
        R("fe80::/10", "link local", LinkLocal),
        R("fec0::/10", "site local (deprecated)", PrivateNetwork),
        R("ff00::/8", "multicast", Reserved),
        // the IPv6 Address Space registry's "Reserved by IETF": all of it outside 2000::/3 and the ranges above
        R("::/8", "reserved by the IETF", Reserved), R("100::/8", "reserved by the IETF", Reserved),
        R("200::/7", "reserved by the IETF", Reserved), R("400::/6", "reserved by the IETF", Reserved),
        R("800::/5", "reserved by the IETF", Reserved), R("1000::/4", "reserved by the IETF", Reserved),
        R("4000::/3", "reserved by the IETF", Reserved), R("6000::/3", "reserved by the IETF", Reserved),
        R("8000::/3", "reserved by the IETF", Reserved), R("a000::/3", "reserved by the IETF", Reserved),
        R("c000::/3", "reserved by the IETF", Reserved), R("e000::/4", "reserved by the IETF", Reserved),
        R("f000::/5", "reserved by the IETF", Reserved), R("f800::/6", "reserved by the IETF", Reserved),
        R("fe00::/9", "reserved by the IETF", Reserved),
    ];

    /// <summary>The most specific range holding <paramref name="address"/>; null = public unicast.</summary>
    public static AddressRange? Find(IPAddress address)
    {
        AddressRange? found = null;
        foreach (var range in All)
            if (range.Contains(address) && range.Network.PrefixLength > (found?.Network.PrefixLength ?? -1)) found = range;
        return found;
    }

    private static AddressRange R(string cidr, string name, WebhookUrlRejection? reason, EmbeddedIPv4 embedded = None) =>
        new(cidr, name, reason, embedded);
}
