//! The flow table's index: flows found by their endpoints. A slot is one pointer; the key is
//! not stored beside it but read from the flow itself (its `client` and `server`, at the start
//! of the flow), so that a lookup touches the flow's first cache line, which the packet needs
//! next anyway, instead of a separate 64-byte key that is a cache miss of its own whenever
//! thousands of flows interleave.

use super::{Flow, FlowKey};
use hashbrown::hash_table::HashTable;
use std::hash::BuildHasher;
use std::net::SocketAddr;

/// Flows by their endpoints. The hash is keyed with per-table random seeds, as hashbrown's own
/// hashers are: a capture is hostile input, and with a fixed hash its sender could choose
/// ports that all land in one probe sequence. Nothing depends on the table's order (flows
/// leave it sorted by id), so the seeds never change the output.
pub(super) struct FlowMap {
    table: HashTable<Box<Flow>>,
    seeds: Seeds,
}

impl Default for FlowMap {
    fn default() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        let seeds = Seeds([random.hash_one(0u8), random.hash_one(1u8)]);
        FlowMap { table: HashTable::new(), seeds }
    }
}

#[derive(Clone, Copy)]
struct Seeds([u64; 2]);

impl Seeds {
    fn endpoint(self, a: &SocketAddr) -> u64 {
        fold_mul(endpoint_word(a) ^ self.0[0], 0x9e37_79b9_7f4a_7c15)
    }

    /// The same for either order of the endpoints, so a packet is looked up without first
    /// putting its endpoints in key order.
    fn pair(self, a: &SocketAddr, b: &SocketAddr) -> u64 {
        let sum = self.endpoint(a).wrapping_add(self.endpoint(b));
        fold_mul(sum ^ self.0[1], 0xd6e8_feb8_6659_fd93)
    }

    fn flow(self, flow: &Flow) -> u64 {
        self.pair(&flow.client, &flow.server)
    }
}

/// One endpoint as a word (the derived `Hash` of `SocketAddr` walks every field of the enum,
/// several times the work).
fn endpoint_word(a: &SocketAddr) -> u64 {
    match a {
        SocketAddr::V4(v) => u64::from(v.ip().to_bits()) << 16 | u64::from(v.port()),
        SocketAddr::V6(v) => {
            let b = v.ip().to_bits();
            // Tagged so that no IPv6 endpoint is the word of an IPv4 one.
            (b as u64) ^ ((b >> 64) as u64).rotate_left(17) ^ u64::from(v.port()) << 48 ^ 1 << 63
        }
    }
}

/// Both halves of the 128-bit product: well mixed in the high bits (hashbrown's tag) and in
/// the low bits (its bucket index).
fn fold_mul(x: u64, k: u64) -> u64 {
    let m = u128::from(x) * u128::from(k);
    (m as u64) ^ ((m >> 64) as u64)
}

fn matches_pair<'a>(a: &'a SocketAddr, b: &'a SocketAddr) -> impl Fn(&Box<Flow>) -> bool + 'a {
    move |f| (f.client == *a && f.server == *b) || (f.client == *b && f.server == *a)
}

impl FlowMap {
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(super) fn get(&self, key: &FlowKey) -> Option<&Flow> {
        let (a, b) = (&key.lo, &key.hi);
        self.table.find(self.seeds.pair(a, b), matches_pair(a, b)).map(|f| &**f)
    }

    pub(super) fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        self.get_pair_mut(&key.lo, &key.hi)
    }

    /// The first flow whose hash tag matches the pair's: most likely the pair's flow, found
    /// without reading any flow (see [`super::FlowTable::preload`]).
    pub(super) fn likely(&self, a: &SocketAddr, b: &SocketAddr) -> Option<&Flow> {
        self.table.find(self.seeds.pair(a, b), |_| true).map(|f| &**f)
    }

    /// The flow between `a` and `b`, whichever way the packet goes.
    pub(super) fn get_pair_mut(&mut self, a: &SocketAddr, b: &SocketAddr) -> Option<&mut Flow> {
        self.table.find_mut(self.seeds.pair(a, b), matches_pair(a, b)).map(|f| &mut **f)
    }

    pub(super) fn remove(&mut self, key: &FlowKey) -> Option<Box<Flow>> {
        let (a, b) = (&key.lo, &key.hi);
        let entry = self.table.find_entry(self.seeds.pair(a, b), matches_pair(a, b)).ok()?;
        Some(entry.remove().0)
    }

    /// Adds a flow; the caller has made sure no flow on its endpoints is in the table.
    pub(super) fn insert_new(&mut self, flow: Box<Flow>) {
        debug_assert!(self.get(&flow.key()).is_none(), "a second flow on one 5-tuple");
        let seeds = self.seeds;
        self.table.insert_unique(seeds.flow(&flow), flow, |f| seeds.flow(f));
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Flow> {
        self.table.iter().map(|f| &**f)
    }

    /// Removes and returns the flows `pred` selects.
    pub(super) fn extract_if<'a>(
        &'a mut self,
        mut pred: impl FnMut(&Flow) -> bool + 'a,
    ) -> impl Iterator<Item = Box<Flow>> + 'a {
        self.table.extract_if(move |f| pred(f))
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = Box<Flow>> + '_ {
        self.table.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_hashes_with_its_own_seeds() {
        // A sender who learns one run's hash cannot aim packets at another run's buckets.
        let (a, b) = (FlowMap::default(), FlowMap::default());
        assert_ne!(a.seeds.0, b.seeds.0);
        let (x, y) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
        assert_eq!(a.seeds.pair(&x, &y), a.seeds.pair(&y, &x));
        assert_ne!(a.seeds.pair(&x, &y), b.seeds.pair(&x, &y));
    }
}
