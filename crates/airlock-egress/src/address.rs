//! Which addresses a name may resolve to: anything but the machine itself,
//! its networks and the cloud's metadata service, unless the allowlist names
//! the address literally.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressClass {
    /// 169.254.169.254 or fd00:ec2::254: the cloud instance's credentials.
    Metadata,
    Loopback,
    /// RFC 1918, shared address space (100.64/10), unique local (fc00::/7),
    /// site-local (fec0::/10).
    Private,
    LinkLocal,
    Multicast,
    /// 0.0.0.0/8 and `::`: "this host".
    Unspecified,
    /// 240/4, the broadcast address and other ranges no host answers on.
    Reserved,
}

impl AddressClass {
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Metadata => "the cloud metadata service",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Metadata services of clouds at other addresses, which a name may be made
/// to resolve to as well: Oracle Cloud's legacy endpoint, Azure's
/// WireServer (certificates and extension settings; a public address, but
/// reachable only inside Azure) and Alibaba Cloud's.
const OTHER_METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 0, 192),
    Ipv4Addr::new(168, 63, 129, 16),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// `None` for a public address; otherwise what it is. An IPv6 address that
/// carries an IPv4 one (mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`) is
/// judged by the IPv4 address it reaches.
pub fn classify(address: IpAddr) -> Option<AddressClass> {
    match address {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = a.segments();
            let v4 = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return classify_v4(v4(s[6], s[7]));
            }
            // Other forms that carry an IPv4 address, which a host with a
            // tunnel or translator configured delivers to that address:
            // 6to4 (2002:V4::/48), IPv4-compatible (::V4, deprecated, but
            // not `::` or `::1`) and SIIT (::ffff:0:V4). Judged by it too.
            if s[0] == 0x2002 {
                return classify_v4(v4(s[1], s[2]));
            }
            if s[0..6] == [0, 0, 0, 0, 0, 0] && !a.is_unspecified() && !a.is_loopback() {
                return classify_v4(v4(s[6], s[7]));
            }
            if s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
                return classify_v4(v4(s[6], s[7]));
            }
            // The local-use NAT64 prefix (RFC 8215) translates into the
            // site's own IPv4 networks.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
                return Some(AddressClass::Private);
            }
            classify_v6(a)
        }
    }
}

fn classify_v4(a: Ipv4Addr) -> Option<AddressClass> {
    let [o0, o1, ..] = a.octets();
    Some(if a == METADATA_V4 || OTHER_METADATA_V4.contains(&a) {
        AddressClass::Metadata
    } else if a.is_loopback() {
        AddressClass::Loopback
    } else if a.is_private() || (o0 == 100 && (o1 & 0xc0) == 64) {
        AddressClass::Private
    } else if a.is_link_local() {
        AddressClass::LinkLocal
    } else if a.is_multicast() {
        AddressClass::Multicast
    } else if o0 == 0 {
        AddressClass::Unspecified
    } else if a.is_broadcast() || o0 >= 240 || (o0 == 192 && o1 == 0 && a.octets()[2] == 0) {
        // 192.0.0.0/24: IETF protocol assignments, not a host on the Internet.
        AddressClass::Reserved
    } else {
        return None;
    })
}

fn classify_v6(a: Ipv6Addr) -> Option<AddressClass> {
    let s0 = a.segments()[0];
    Some(if a == METADATA_V6 {
        AddressClass::Metadata
    } else if a.is_loopback() {
        AddressClass::Loopback
    } else if a.is_unspecified() {
        AddressClass::Unspecified
    } else if (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfec0 {
        AddressClass::Private
    } else if (s0 & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if a.is_multicast() {
        AddressClass::Multicast
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classes() {
        use AddressClass::*;
        let cases = [
            ("169.254.169.254", Some(Metadata)),
            ("fd00:ec2::254", Some(Metadata)),
            ("::ffff:169.254.169.254", Some(Metadata)),
            ("127.0.0.1", Some(Loopback)),
            ("127.8.9.10", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("10.0.0.5", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("100.64.0.1", Some(Private)),
            ("fd12::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("169.254.1.1", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("224.0.0.1", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("255.255.255.255", Some(Reserved)),
            ("240.0.0.1", Some(Reserved)),
            ("93.184.215.14", None),
            ("100.128.0.1", None),
            ("2606:4700::1111", None),
            ("64:ff9b::5db8:d70e", None),
            ("192.0.0.192", Some(Metadata)),
            ("168.63.129.16", Some(Metadata)),
            ("100.100.100.200", Some(Metadata)),
            ("::ffff:192.0.0.192", Some(Metadata)),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.1.1", None),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:a9fe:a9fe::1", Some(Metadata)),
            ("2002:5db8:d70e::1", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::10.0.0.5", Some(Private)),
            ("::ffff:0:7f00:1", Some(Loopback)),
            ("64:ff9b:1::5db8:d70e", Some(Private)),
        ];
        for (a, want) in cases {
            assert_eq!(class(a), want, "{a}");
        }
    }
}
