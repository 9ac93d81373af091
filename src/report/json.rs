//! The JSON document (`--format json`), schema `mtlscope/v1`, built from its own DTO types so
//! that internal refactors never change the contract. Documented in README.md.

use super::{protocol_of, AsStr, Summary};
use crate::analyze::{Analysis, AnalyzedFlow, InputReport, LimitsHit};
use crate::capture::Format;
use crate::classify::Classification;
use crate::decode::Tunnel;
use crate::flow::ClientBy;
use crate::inventory::resolve_flows::{add_edge, InventoryInfo, Placement};
use crate::inventory::{edge_dto, workload_dto, EdgeDto, EdgeSet, ReasonDto, WorkloadDto};
use crate::Rfc3339;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

pub const SCHEMA: &str = "mtlscope/v1";

#[derive(Serialize)]
pub struct Document<'a> {
    pub schema: &'static str,
    pub flows: Flows<'a>,
    /// Flows added up per client workload -> server workload:port; null without an inventory.
    pub edges: Option<Vec<EdgeDto>>,
    /// What the inventory held; null without one.
    pub inventory: Option<InventoryRunDto<'a>>,
    pub inputs: Vec<InputDto<'a>>,
    pub summary: SummaryDto,
}

/// The run's inventory: where it came from and what it held.
#[derive(Serialize)]
pub struct InventoryRunDto<'a> {
    pub sources: &'a [String],
    pub pods: usize,
    pub services: usize,
    pub nodes: usize,
    pub warnings: Vec<String>,
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
    /// Most flows tracked at once while this input was read.
    pub peak_flows: usize,
    /// How often each cap was hit while this input was read.
    pub limits_hit: LimitsHitDto,
    pub error: Option<&'a str>,
    pub warnings: &'a [String],
}

/// Counts per cap (README, Memory caps), named after the flags that set them.
#[derive(Serialize, Default)]
pub struct LimitsHitDto {
    /// Flows finished early because the flow table was full.
    pub max_flows: u64,
    /// Flows with bytes left unanalysed because a reassembly buffer was full.
    pub max_flow_buffer: u64,
    /// Session handles the resumption linker forgot.
    pub max_sessions: u64,
    /// Resumed flows reported without waiting for their origin.
    pub max_resumed_waiting: u64,
}

impl From<&LimitsHit> for LimitsHitDto {
    fn from(l: &LimitsHit) -> Self {
        LimitsHitDto {
            max_flows: l.max_flows,
            max_flow_buffer: l.max_flow_buffer,
            max_sessions: l.max_sessions,
            max_resumed_waiting: l.max_resumed_waiting,
        }
    }
}

/// The run's totals over its inputs.
fn limits_total(inputs: &[InputReport]) -> LimitsHitDto {
    let mut total = LimitsHit::default();
    inputs.iter().for_each(|i| total.add(&i.limits));
    LimitsHitDto::from(&total)
}

#[derive(Serialize)]
pub struct EndpointDto {
    pub ip: IpAddr,
    pub port: u16,
    /// The pod, service or node at `ip` when the flow began; null without an inventory or
    /// for an address the inventory does not hold.
    pub workload: Option<WorkloadDto>,
}

impl From<SocketAddr> for EndpointDto {
    fn from(a: SocketAddr) -> Self {
        EndpointDto { ip: a.ip(), port: a.port(), workload: None }
    }
}

#[derive(Serialize)]
pub struct IdentityChecksDto {
    pub server: IdentityCheckDto,
    pub client: IdentityCheckDto,
}

#[derive(Serialize)]
pub struct IdentityCheckDto {
    /// "match" | "mismatch" | "not-applicable"
    pub result: &'static str,
    pub message: String,
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
    /// With an inventory: "pod-to-pod", "pod-to-service", "node-to-pod", "pod-to-node",
    /// "pod-to-external", "external-to-pod", "local", "unknown"; without: the hop word.
    pub scope: &'static str,
    pub protocol: &'static str,
    pub verdict: &'static str,
    pub proof: Option<&'static str>,
    pub evidence: String,
    pub warnings: Vec<String>,
    /// Why a pod-to-pod or pod-to-service flow is not mTLS; null without an inventory.
    pub reasons: Option<Vec<ReasonDto>>,
    /// The mesh identity on the wire against the inventory; null unless an inventory is given
    /// and the flow is a mesh's TLS with an identity on the wire.
    pub identity_check: Option<IdentityChecksDto>,
    pub tls: Option<super::tls_dto::TlsDto>,
    pub http: Option<HttpDto>,
    pub upgrade: Option<UpgradeDto>,
    pub packets: u64,
    pub bytes: u64,
    pub client_bytes: u64,
    pub server_bytes: u64,
    pub first_seen: AsStr<Rfc3339>,
    pub last_seen: AsStr<Rfc3339>,
    pub interface: Option<String>,
    /// Linux interface index from an SLL/SLL2 header (`tcpdump -i any`); 1 is `lo`.
    pub ifindex: Option<u32>,
    pub tunnel: Option<TunnelDto>,
    pub vlan: Option<u16>,
    pub syn_seen: bool,
    pub closed: bool,
    pub gaps: u32,
    pub duplicates: u64,
    /// Caps that cut this flow's analysis short: "max-flows" (finished early, the table was
    /// full), "max-flow-buffer" (bytes left unanalysed), "max-resumed-waiting" (not linked).
    pub limits_hit: Vec<&'static str>,
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
    /// Count per `scope` word.
    pub scopes: BTreeMap<&'static str, usize>,
    /// Pod-to-pod and pod-to-service flows with payload that are not mTLS; null without an
    /// inventory.
    pub pod_flows_not_mtls: Option<usize>,
    /// Identity checks that found a mismatch (a flow may count twice: server and client);
    /// null without an inventory.
    pub identity_mismatches: Option<usize>,
    /// Caps hit, added up over the inputs.
    pub limits_hit: LimitsHitDto,
}

pub fn document(analysis: &Analysis) -> Document<'_> {
    let inventory = analysis.inventory.as_ref();
    let edges = inventory.map(|_| {
        let mut set = EdgeSet::default();
        analysis.flows.iter().for_each(|f| add_edge(&mut set, f));
        set
    });
    Document {
        schema: SCHEMA,
        flows: Flows(&analysis.flows),
        edges: edges.as_ref().map(edges_dto),
        inventory: inventory.map(|i| inventory_dto(i, edges.as_ref())),
        inputs: analysis.inputs.iter().map(input_dto).collect(),
        summary: summary_dto(&Summary::of(analysis), inventory.is_some(), &analysis.inputs),
    }
}

fn edges_dto(edges: &EdgeSet) -> Vec<EdgeDto> {
    edges.sorted().into_iter().map(edge_dto).collect()
}

fn inventory_dto<'a>(info: &'a InventoryInfo, edges: Option<&EdgeSet>) -> InventoryRunDto<'a> {
    let mut warnings = info.warnings.clone();
    if let Some(dropped) = edges.map(|e| e.dropped_flows).filter(|&n| n > 0) {
        warnings.push(format!(
            "{dropped} flows were left out of `edges`: more than {} distinct edges",
            EdgeSet::DEFAULT_MAX_EDGES
        ));
    }
    InventoryRunDto {
        sources: &info.sources,
        pods: info.pods,
        services: info.services,
        nodes: info.nodes,
        warnings,
    }
}

fn summary_dto(summary: &Summary, inventory: bool, inputs: &[InputReport]) -> SummaryDto {
    SummaryDto {
        flows: summary.flows,
        verdicts: summary.verdicts.iter().map(|(v, n)| (v.as_str(), *n)).collect(),
        protocols: summary.protocols.clone(),
        network_flows_not_mtls: summary.network_not_mtls,
        scopes: summary.scopes.clone(),
        pod_flows_not_mtls: inventory.then_some(summary.pod_not_mtls),
        identity_mismatches: inventory.then_some(summary.identity_mismatches),
        limits_hit: limits_total(inputs),
    }
}

/// Writes the same document as [`document`] while the analysis runs: each flow is written as
/// soon as it is judged (one per line), then the inputs and the summary. Memory stays flat
/// however many flows a capture holds.
pub struct StreamWriter<'w> {
    out: &'w mut dyn Write,
    summary: Summary,
    error: Option<io::Error>,
    /// With an inventory: its description and the edges added up so far (one entry per
    /// distinct edge, capped), written after the flows.
    inventory: Option<(InventoryInfo, EdgeSet)>,
    /// Each flow is serialized here, then written in one call: serde_json makes a write per
    /// key and punctuation mark, which through `dyn Write` cost a quarter of the JSON time.
    line: Vec<u8>,
}

impl<'w> StreamWriter<'w> {
    pub fn new(out: &'w mut dyn Write) -> io::Result<Self> {
        write!(out, "{{\"schema\":\"{SCHEMA}\",\"flows\":[")?;
        Ok(StreamWriter {
            out,
            summary: Summary::default(),
            error: None,
            inventory: None,
            line: Vec::with_capacity(4096),
        })
    }

    /// The flows are enriched with this inventory: write `edges` and `inventory` at the end.
    pub fn with_inventory(mut self, info: InventoryInfo) -> Self {
        self.inventory = Some((info, EdgeSet::default()));
        self
    }

    /// Write one flow. The first write error is kept and returned by [`Self::finish`].
    pub fn flow(&mut self, f: &AnalyzedFlow) {
        if self.error.is_some() {
            return;
        }
        let sep = if self.summary.flows == 0 { "\n" } else { ",\n" };
        self.summary.add(f);
        if let Some((_, edges)) = &mut self.inventory {
            add_edge(edges, f);
        }
        self.line.clear();
        self.line.extend_from_slice(sep.as_bytes());
        let result = serde_json::to_writer(&mut self.line, &flow_dto(f))
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(&self.line));
        self.error = result.err();
    }

    pub fn finish(self, inputs: &[InputReport]) -> io::Result<()> {
        self.finish_with(inputs, &mut |_| Ok(()))
    }

    /// [`Self::finish`], with `extra` writing more top-level members (`,"key":value`) just
    /// before the document closes (`check` adds its section so).
    pub fn finish_with(
        self,
        inputs: &[InputReport],
        extra: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let totals = limits_total(inputs);
        let inputs: Vec<InputDto<'_>> = inputs.iter().map(input_dto).collect();
        write!(self.out, "\n],\"edges\":")?;
        let inventory = self.inventory.as_ref();
        serde_json::to_writer(&mut *self.out, &inventory.map(|(_, e)| edges_dto(e)))?;
        write!(self.out, ",\"inventory\":")?;
        let info = inventory.map(|(i, e)| inventory_dto(i, Some(e)));
        serde_json::to_writer(&mut *self.out, &info)?;
        write!(self.out, ",\"inputs\":")?;
        serde_json::to_writer(&mut *self.out, &inputs)?;
        write!(self.out, ",\"summary\":")?;
        let mut summary = summary_dto(&self.summary, inventory.is_some(), &[]);
        summary.limits_hit = totals;
        serde_json::to_writer(&mut *self.out, &summary)?;
        extra(&mut *self.out)?;
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
        peak_flows: i.table.peak_flows,
        limits_hit: LimitsHitDto::from(&i.limits),
        error: i.fatal.as_deref(),
        warnings: &i.warnings,
    }
}

pub fn flow_dto(f: &AnalyzedFlow) -> FlowDto {
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
    let place = f.placement.as_deref();
    let mut client = EndpointDto::from(r.client);
    let mut server = EndpointDto::from(r.server);
    client.workload = place.and_then(|p| workload_dto(&p.client));
    server.workload = place.and_then(|p| workload_dto(&p.server));
    FlowDto {
        id: r.id,
        input: f.input,
        client,
        server,
        client_inferred: r.client_by.is_inferred(),
        client_inferred_by: match r.client_by {
            ClientBy::Payload => Some("payload"),
            ClientBy::HigherPort => Some("higher-port"),
            ClientBy::Syn | ClientBy::SynAck => None,
        },
        hop: f.hop.as_str(),
        scope: place.map_or(f.hop.as_str(), |p| p.scope.as_str()),
        protocol: protocol_of(&r.classification),
        verdict: j.verdict.as_str(),
        proof: j.proof.map(|p| p.as_str()),
        evidence: j.evidence.clone(),
        warnings: j.warnings.clone(),
        reasons: place.map(reasons_dto),
        identity_check: place.and_then(identity_check_dto),
        tls,
        http,
        upgrade,
        packets: r.dirs[0].packets + r.dirs[1].packets,
        bytes: r.dirs[0].payload_bytes + r.dirs[1].payload_bytes,
        client_bytes: r.dirs[0].payload_bytes,
        server_bytes: r.dirs[1].payload_bytes,
        first_seen: AsStr(Rfc3339(r.first_seen)),
        last_seen: AsStr(Rfc3339(r.last_seen)),
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
        limits_hit: f.limits_hit(),
    }
}

fn reasons_dto(p: &Placement) -> Vec<ReasonDto> {
    p.reasons
        .iter()
        .map(|r| ReasonDto { code: r.code.as_str(), message: r.message.clone() })
        .collect()
}

fn identity_check_dto(p: &Placement) -> Option<IdentityChecksDto> {
    let c = p.identity_check.as_ref()?;
    let side = |c: &crate::inventory::IdentityCheck| IdentityCheckDto {
        result: c.as_str(),
        message: c.message().to_string(),
    };
    Some(IdentityChecksDto { server: side(&c.server), client: side(&c.client) })
}
