//! Stage 2: link layers, IP and TCP. Turns one captured frame into a borrowed TCP segment.
//!
//! INTERFACE (skeleton: the decode helper implements it).

use std::net::IpAddr;

/// A pcap/pcapng link type (DLT/LINKTYPE value). Open newtype: unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// TCP header flags (the low 8 bits of the flags field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// What decoding needs to know beyond the frame: which UDP ports carry tunnels.
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    pub vxlan_ports: Vec<u16>,
    pub geneve_ports: Vec<u16>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig { vxlan_ports: vec![4789, 8472], geneve_ports: vec![6081] }
    }
}
