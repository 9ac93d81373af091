//! The flow table's index: flows found by their endpoints. A slot is one pointer; the key is
//! not stored beside it but read from the flow itself (its `client` and `server`, at the start
//! of the flow), so that a lookup touches the flow's first cache line, which the packet needs
//! next anyway, instead of a separate 64-byte key that is a cache miss of its own whenever
//! thousands of flows interleave.

use super::{Flow, FlowKey};
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxHasher;
use std::hash::Hasher;
use std::net::SocketAddr;

#[derive(Default)]
pub(super) struct FlowMap {
    table: HashTable<Box<Flow>>,
}

/// Feeds one endpoint to the hasher as whole words (the derived `Hash` of `SocketAddr` walks
/// every field of the enum, several times the work).
fn write_addr(h: &mut FxHasher, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v) => h.write_u64(u64::from(v.ip().to_bits()) << 16 | u64::from(v.port())),
        SocketAddr::V6(v) => {
            h.write_u128(v.ip().to_bits());
            h.write_u64(1 << 32 | u64::from(v.port()));
        }
    }
}

fn hash(key: &FlowKey) -> u64 {
    let mut h = FxHasher::default();
    write_addr(&mut h, &key.lo);
    write_addr(&mut h, &key.hi);
    h.finish()
}

fn hash_flow(flow: &Flow) -> u64 {
    hash(&flow.key())
}

fn matches(key: &FlowKey) -> impl Fn(&Box<Flow>) -> bool + '_ {
    move |f| {
        (f.client == key.lo && f.server == key.hi) || (f.client == key.hi && f.server == key.lo)
    }
}

impl FlowMap {
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(super) fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.table.find(hash(key), matches(key)).map(|f| &**f)
    }

    pub(super) fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        self.table.find_mut(hash(key), matches(key)).map(|f| &mut **f)
    }

    pub(super) fn remove(&mut self, key: &FlowKey) -> Option<Box<Flow>> {
        match self.table.find_entry(hash(key), matches(key)) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    /// Adds a flow, replacing (and returning) one on the same endpoints.
    pub(super) fn insert(&mut self, flow: Box<Flow>) -> Option<Box<Flow>> {
        let key = flow.key();
        match self.table.entry(hash(&key), matches(&key), |f| hash_flow(f)) {
            Entry::Occupied(mut o) => Some(std::mem::replace(o.get_mut(), flow)),
            Entry::Vacant(v) => {
                v.insert(flow);
                None
            }
        }
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
