//! The JSON document (`--format json`), schema `mtlscope/v1`, built from its own DTO types so
//! that internal refactors never change the contract. Documented in README.md.

use super::{protocol_of, Summary};
use crate::analyze::{Analysis, AnalyzedFlow, InputReport};
use crate::capture::Format;
use crate::classify::Classification;
use crate::decode::Tunnel;
use crate::flow::ClientBy;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;

pub const SCHEMA: &str = "mtlscope/v1";

#[derive(Serialize)]
pub struct Document<'a> {
    pub schema: &'static str,
    pub flows: Flows<'a>,
    pub inputs: Vec<InputDto<'a>>,
    pub summary: SummaryDto,
}

/// The flows, turned into DTOs one at a time as they are written (never all at once).
pub struct Flows<'a>(&'a [AnalyzedFlow]);

impl Serialize for Flows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(flow_dto))
    }
}

#[derive(Serialize)]
pub struct InputDto<'a> {
    pub path: &'a str,
    pub format: Option<&'static str>,
    pub link_types: Vec<String>,
    pub interfaces: Vec<Option<&'a str>>,
    pub packets: u64,
    pub bytes: u64,
    pub tcp_packets: u64,
    pub truncated_frames: u64,
    pub ip_fragments: u64,
    pub duplicates: u64,
    pub flows: u64,
    pub error: Option<&'a str>,
    pub warnings: &'a [String],
}

#[derive(Serialize)]
pub struct EndpointDto {
    pub ip: String,
    pub port: u16,
}

impl From<SocketAddr> for EndpointDto {
    fn from(a: SocketAddr) -> Self {
        EndpointDto { ip: a.ip().to_string(), port: a.port() }
    }
}

#[derive(Serialize)]
pub struct FlowDto {
    pub id: u64,
    pub input: usize,
    pub client: EndpointDto,
    pub server: EndpointDto,
    pub client_inferred: bool,
    /// How the client was picked when no SYN was seen: "payload" or "higher-port".
    pub client_inferred_by: Option<&'static str>,
    pub hop: &'static str,
    pub protocol: &'static str,
    pub verdict: &'static str,
    pub proof: Option<&'static str>,
    pub evidence: String,
    pub warnings: Vec<String>,
    pub tls: Option<super::tls_dto::TlsDto>,
    pub http: Option<HttpDto>,
    pub upgrade: Option<UpgradeDto>,
    pub packets: u64,
    pub bytes: u64,
    pub client_bytes: u64,
    pub server_bytes: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub interface: Option<String>,
    /// Linux interface index from an SLL/SLL2 header (`tcpdump -i any`); 1 is `lo`.
    pub ifindex: Option<u32>,
    pub tunnel: Option<TunnelDto>,
    pub vlan: Option<u16>,
    pub syn_seen: bool,
    pub closed: bool,
    pub gaps: u32,
    pub duplicates: u64,
}

#[derive(Serialize)]
pub struct HttpDto {
    pub version: &'static str,
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub status: Option<u16>,
    pub grpc: bool,
    /// The `Upgrade` header of the first request (e.g. "h2c", "websocket").
    pub upgrade: Option<String>,
}

#[derive(Serialize)]
pub struct UpgradeDto {
    pub from: String,
    pub evidence: String,
    pub plaintext_bytes: u64,
}

#[derive(Serialize)]
pub struct TunnelDto {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub vni: Option<u32>,
}

#[derive(Serialize)]
pub struct SummaryDto {
    pub flows: usize,
    pub verdicts: BTreeMap<&'static str, usize>,
    pub protocols: BTreeMap<&'static str, usize>,
    pub network_flows_not_mtls: usize,
}

pub fn document(analysis: &Analysis) -> Document<'_> {
    Document {
        schema: SCHEMA,
        flows: Flows(&analysis.flows),
        inputs: analysis.inputs.iter().map(input_dto).collect(),
        summary: summary_dto(&Summary::of(analysis)),
    }
}

fn summary_dto(summary: &Summary) -> SummaryDto {
    SummaryDto {
        flows: summary.flows,
        verdicts: summary.verdicts.iter().map(|(v, n)| (v.as_str(), *n)).collect(),
        protocols: summary.protocols.clone(),
        network_flows_not_mtls: summary.network_not_mtls,
    }
}

/// Writes the same document as [`document`] while the analysis runs: each flow is written as
/// soon as it is judged (one per line), then the inputs and the summary. Memory stays flat
/// however many flows a capture holds.
pub struct StreamWriter<'w> {
    out: &'w mut dyn Write,
    summary: Summary,
    error: Option<io::Error>,
}

impl<'w> StreamWriter<'w> {
    pub fn new(out: &'w mut dyn Write) -> io::Result<Self> {
        write!(out, "{{\"schema\":\"{SCHEMA}\",\"flows\":[")?;
        Ok(StreamWriter { out, summary: Summary::default(), error: None })
    }

    /// Write one flow. The first write error is kept and returned by [`Self::finish`].
    pub fn flow(&mut self, f: &AnalyzedFlow) {
        if self.error.is_some() {
            return;
        }
        let sep = if self.summary.flows == 0 { "\n" } else { ",\n" };
        self.summary.add(f);
        let result = self.out.write_all(sep.as_bytes()).and_then(|()| {
            serde_json::to_writer(&mut *self.out, &flow_dto(f)).map_err(io::Error::from)
        });
        self.error = result.err();
    }

    pub fn finish(self, inputs: &[InputReport]) -> io::Result<()> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let inputs: Vec<InputDto<'_>> = inputs.iter().map(input_dto).collect();
        write!(self.out, "\n],\"inputs\":")?;
        serde_json::to_writer(&mut *self.out, &inputs)?;
        write!(self.out, ",\"summary\":")?;
        serde_json::to_writer(&mut *self.out, &summary_dto(&self.summary))?;
        writeln!(self.out, "}}")
    }
}

pub fn write(out: &mut dyn Write, analysis: &Analysis) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(analysis))?;
    writeln!(out)
}

fn input_dto(i: &InputReport) -> InputDto<'_> {
    InputDto {
        path: &i.path,
        format: i.format.map(|f| match f {
            Format::Pcap { nanosecond: false } => "pcap",
            Format::Pcap { nanosecond: true } => "pcap-ns",
            Format::PcapNg => "pcapng",
        }),
        link_types: i.stats.link_types.keys().map(|&l| super::link_type_name(l)).collect(),
        interfaces: i.interfaces.iter().map(|f| f.name.as_deref()).collect(),
        packets: i.stats.packets,
        bytes: i.stats.bytes,
        tcp_packets: i.stats.tcp_packets,
        truncated_frames: i.stats.truncated_frames,
        ip_fragments: i.stats.ip_fragments,
        duplicates: i.table.duplicates,
        flows: i.table.flows_created,
        error: i.fatal.as_deref(),
        warnings: &i.warnings,
    }
}

fn flow_dto(f: &AnalyzedFlow) -> FlowDto {
    let r = &f.record;
    let j = &f.judgement;
    let (http, upgrade) = match &r.classification {
        Classification::Http1 { request, response, .. } => (
            Some(HttpDto {
                version: "1.1",
                method: request.as_ref().map(|q| q.method.clone()),
                path: request.as_ref().map(|q| q.path.clone()),
                host: request.as_ref().and_then(|q| q.host.clone()),
                status: response.as_ref().map(|s| s.status),
                grpc: false,
                upgrade: request.as_ref().and_then(|q| q.upgrade.clone()),
            }),
            None,
        ),
        Classification::H2c { request, via_upgrade } => (
            Some(HttpDto {
                version: "2",
                method: request
                    .as_ref()
                    .and_then(|q| q.method.clone())
                    .or_else(|| via_upgrade.as_ref().map(|u| u.method.clone())),
                path: request
                    .as_ref()
                    .and_then(|q| q.path.clone())
                    .or_else(|| via_upgrade.as_ref().map(|u| u.path.clone())),
                host: request
                    .as_ref()
                    .and_then(|q| q.authority.clone())
                    .or_else(|| via_upgrade.as_ref().and_then(|u| u.host.clone())),
                status: None,
                grpc: request.as_ref().is_some_and(|q| q.is_grpc()),
                upgrade: via_upgrade.as_ref().and_then(|u| u.upgrade.clone()),
            }),
            None,
        ),
        Classification::Tls { preamble: Some(p), .. } => (
            None,
            Some(UpgradeDto {
                from: p.protocol.clone(),
                evidence: p.evidence.clone(),
                plaintext_bytes: p.bytes[0] + p.bytes[1],
            }),
        ),
        _ => (None, None),
    };
    let tls = match &r.classification {
        Classification::Tls { facts, .. } => {
            let mut tls =
                super::tls_dto::tls_dto(facts, f.client_certificate, f.identities.as_deref());
            tls.resumed_from = f.resumed_from.as_ref().map(super::tls_dto::origin_dto);
            Some(tls)
        }
        _ => None,
    };
    FlowDto {
        id: r.id,
        input: f.input,
        client: r.client.into(),
        server: r.server.into(),
        client_inferred: r.client_by.is_inferred(),
        client_inferred_by: match r.client_by {
            ClientBy::Payload => Some("payload"),
            ClientBy::HigherPort => Some("higher-port"),
            ClientBy::Syn | ClientBy::SynAck => None,
        },
        hop: f.hop.as_str(),
        protocol: protocol_of(&r.classification),
        verdict: j.verdict.as_str(),
        proof: j.proof.map(|p| p.as_str()),
        evidence: j.evidence.clone(),
        warnings: j.warnings.clone(),
        tls,
        http,
        upgrade,
        packets: r.dirs[0].packets + r.dirs[1].packets,
        bytes: r.dirs[0].payload_bytes + r.dirs[1].payload_bytes,
        client_bytes: r.dirs[0].payload_bytes,
        server_bytes: r.dirs[1].payload_bytes,
        first_seen: r.first_seen.rfc3339(),
        last_seen: r.last_seen.rfc3339(),
        interface: f.interface.clone(),
        ifindex: r.ifindex,
        tunnel: r.tunnel.map(|t| match t {
            Tunnel::Vxlan { vni } => TunnelDto { kind: "vxlan", vni: Some(vni) },
            Tunnel::Geneve { vni } => TunnelDto { kind: "geneve", vni: Some(vni) },
            Tunnel::Gre => TunnelDto { kind: "gre", vni: None },
            Tunnel::Erspan { session } => {
                TunnelDto { kind: "erspan", vni: Some(u32::from(session)) }
            }
            Tunnel::IpInIp => TunnelDto { kind: "ip-in-ip", vni: None },
            Tunnel::Gtp { teid } => TunnelDto { kind: "gtp", vni: Some(teid) },
        }),
        vlan: r.vlan,
        syn_seen: r.syn_seen,
        closed: r.closed(),
        gaps: r.reassembly[0].gaps + r.reassembly[1].gaps,
        duplicates: r.duplicates,
    }
}
