//! The policy's small value types: one-or-many lists, name globs, ports, CIDRs, and the closed
//! vocabularies (verdict, scope, reason code). Each parses while the policy is deserialized, so
//! a bad value is reported with its path and line.

use super::date::Date;
use crate::inventory::{ReasonCode, Scope};
use crate::verdict::Verdict;
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A value or a list of values: `port: 8080` and `port: [8080, 9090]` both work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn any(&self, f: impl FnMut(&T) -> bool) -> bool {
        self.0.iter().any(f)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let v = Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                if v.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list would match nothing: leave the field out instead",
                    ));
                }
                Ok(OneOrMany(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|t| OneOrMany(vec![t]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|t| OneOrMany(vec![t]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(|t| OneOrMany(vec![t]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

/// Implements Deserialize through `FromStr`, parsing inside the visitor so that the YAML
/// reader attaches the value's own line to an error.
macro_rules! parse_value {
    ($t:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}
pub(crate) use parse_value;

/// [`parse_value`], plus Serialize through `Display`.
macro_rules! string_value {
    ($t:ty, $what:literal) => {
        parse_value!($t, $what);
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

string_value!(Date, "a date (YYYY-MM-DD)");

/// A name with `*` wildcards (`payments`, `redis-*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn matches(&self, s: &str) -> bool {
        glob_match(self.0.as_bytes(), s.as_bytes())
    }
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob_match(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob_match(rest, &s[1..]),
    }
}

impl FromStr for Glob {
    type Err = String;
    fn from_str(s: &str) -> Result<Glob, String> {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._*".contains(&b));
        if !ok {
            return Err(format!(
                "invalid name '{s}' (Kubernetes names: letters, digits, '-', '.', with '*' as a wildcard)"
            ));
        }
        Ok(Glob(s.to_string()))
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_value!(Glob, "a name");

/// A workload name, optionally namespaced: `payments` or `shop/payments` (globs allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadName {
    pub namespace: Option<Glob>,
    pub name: Glob,
}

impl WorkloadName {
    pub fn matches(&self, namespace: Option<&str>, name: &str) -> bool {
        let ns_ok = match (&self.namespace, namespace) {
            (None, _) => true,
            (Some(g), Some(ns)) => g.matches(ns),
            (Some(_), None) => false,
        };
        ns_ok && self.name.matches(name)
    }
}

impl FromStr for WorkloadName {
    type Err = String;
    fn from_str(s: &str) -> Result<WorkloadName, String> {
        match s.split_once('/') {
            Some((ns, name)) => {
                Ok(WorkloadName { namespace: Some(ns.parse()?), name: name.parse()? })
            }
            None => Ok(WorkloadName { namespace: None, name: s.parse()? }),
        }
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}
string_value!(WorkloadName, "a workload name (name or namespace/name)");

/// A server port or an inclusive range: `8080`, `"8000-8099"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<PortRange, String> {
        let bad = || format!("invalid port '{s}' (expected 1-65535 or a range like 8000-8099)");
        let port = |p: &str| p.trim().parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(bad);
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(s)?, port(s)?),
        };
        if lo > hi {
            return Err(bad());
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}
string_value!(PortRange, "a port or a port range");

/// An address block: `10.244.0.0/16`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad =
            || format!("invalid CIDR '{s}' (expected e.g. 10.244.0.0/16, fd00::/8 or one address)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
string_value!(Cidr, "a CIDR block");

/// Parses a closed vocabulary by its words, listing them all in the error.
fn parse_word<T: Copy>(
    s: &str,
    all: &[T],
    word: fn(T) -> &'static str,
    what: &str,
) -> Result<T, String> {
    all.iter().copied().find(|&v| word(v) == s).ok_or_else(|| {
        let words: Vec<&str> = all.iter().map(|&v| word(v)).collect();
        format!("unknown {what} '{s}' (one of: {})", words.join(", "))
    })
}

/// A verdict word (`plaintext`, `tls-server-auth`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictWord(pub Verdict);

impl FromStr for VerdictWord {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_word(s, &Verdict::ALL, Verdict::as_str, "verdict").map(VerdictWord)
    }
}

impl fmt::Display for VerdictWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}
string_value!(VerdictWord, "a verdict");

pub const SCOPES: [Scope; 8] = [
    Scope::PodToPod,
    Scope::PodToService,
    Scope::NodeToPod,
    Scope::PodToNode,
    Scope::PodToExternal,
    Scope::ExternalToPod,
    Scope::Local,
    Scope::Unknown,
];

/// A scope word (`pod-to-pod`, `node-to-pod`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeWord(pub Scope);

impl FromStr for ScopeWord {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_word(s, &SCOPES, Scope::as_str, "scope").map(ScopeWord)
    }
}

impl fmt::Display for ScopeWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}
string_value!(ScopeWord, "a scope");

pub const REASONS: [ReasonCode; 8] = [
    ReasonCode::ServerNotMeshed,
    ReasonCode::ClientNotMeshed,
    ReasonCode::PortSkipped,
    ReasonCode::DifferentMeshes,
    ReasonCode::AppTlsNotMesh,
    ReasonCode::MeshTlsWithoutClientCert,
    ReasonCode::ProtocolNotProxied,
    ReasonCode::Unknown,
];

/// Fails to compile when a reason code is added and [`REASONS`] is not updated.
#[allow(dead_code)]
fn reasons_are_complete(c: ReasonCode) -> usize {
    match c {
        ReasonCode::ServerNotMeshed => 0,
        ReasonCode::ClientNotMeshed => 1,
        ReasonCode::PortSkipped => 2,
        ReasonCode::DifferentMeshes => 3,
        ReasonCode::AppTlsNotMesh => 4,
        ReasonCode::MeshTlsWithoutClientCert => 5,
        ReasonCode::ProtocolNotProxied => 6,
        ReasonCode::Unknown => 7,
    }
}

/// A reason code (`server-not-meshed`, `port-skipped`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonWord(pub ReasonCode);

impl FromStr for ReasonWord {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_word(s, &REASONS, ReasonCode::as_str, "reason code").map(ReasonWord)
    }
}

impl fmt::Display for ReasonWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}
string_value!(ReasonWord, "a reason code");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = |p: &str, s: &str| p.parse::<Glob>().unwrap().matches(s);
        assert!(g("payments", "payments"));
        assert!(!g("payments", "payments-v2"));
        assert!(g("redis-*", "redis-cache"));
        assert!(g("*", "anything"));
        assert!(g("*-db", "orders-db"));
        assert!(!g("*-db", "orders-dbx"));
        assert!("pay ments".parse::<Glob>().is_err());
        assert!("".parse::<Glob>().is_err());
    }

    #[test]
    fn cidrs() {
        let c = |s: &str, ip: &str| s.parse::<Cidr>().unwrap().contains(ip.parse().unwrap());
        assert!(c("10.244.0.0/16", "10.244.3.7"));
        assert!(!c("10.244.0.0/16", "10.245.0.1"));
        assert!(c("10.0.0.5", "10.0.0.5"));
        assert!(!c("10.0.0.5", "10.0.0.6"));
        assert!(c("0.0.0.0/0", "192.0.2.1"));
        assert!(c("fd00::/8", "fd12::1"));
        assert!(!c("fd00::/8", "10.0.0.1"));
        for bad in ["10.0.0.0/33", "10.0.0/8", "fd00::/129", "x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        let p: PortRange = "8000-8099".parse().unwrap();
        assert!(p.contains(8000) && p.contains(8099) && !p.contains(8100));
        for bad in ["0", "70000", "9-8", "http"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn words_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(v.as_str().parse::<VerdictWord>().unwrap().0, v);
        }
        for s in SCOPES {
            assert_eq!(s.as_str().parse::<ScopeWord>().unwrap().0, s);
        }
        for r in REASONS {
            assert_eq!(r.as_str().parse::<ReasonWord>().unwrap().0, r);
            assert_eq!(REASONS[reasons_are_complete(r)], r);
        }
        let e = "mtls-ish".parse::<VerdictWord>().unwrap_err();
        assert!(e.contains("one of: plaintext, no-encryption"), "{e}");
    }
}
