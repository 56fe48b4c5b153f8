//! Topic routing: which workers have subscribers of a topic, and how many.
//!
//! Publishers read routes on every publish, and subscriptions change rarely, so the table is
//! copy-on-write: writers build a new table under a mutex and bump a version number; each
//! endpoint keeps its own `Arc` of the table and the version it saw, and on publish does one
//! load of the version, taking the lock only when it changed. The fast path is one atomic load
//! and a hash lookup, with no lock and no allocation.
//!
//! The version is `Relaxed` on both sides: it is only a hint to take the lock. The table is
//! read and written under the mutex, which orders it; and a reader that loads a version cannot
//! then lock and find an older table, because the bump happened inside the critical section
//! that installed the table (a critical section ordered before the reader's would make its
//! unlock happen before the bump, and a load cannot read a store that happens after it).
//!
//! Ordering with the workers (see `bus.rs`): a subscribe registers the handler on its worker
//! and waits for the worker's acknowledgement *before* publishing the new route, so no message
//! can reach a worker that does not know the handler yet; an unsubscribe removes the route
//! first and returns only after the worker acknowledged dropping the handler, so nothing is
//! delivered to it after `unsubscribe` returns.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::sync::{lock, AtomicUsize, Mutex, Ordering};

/// A topic identifier.
pub type Topic = u32;

/// Hashes a `u32` topic with one multiply (topics are small integers, not attacker-chosen).
#[derive(Default, Clone, Copy)]
pub(crate) struct TopicHasher(u64);

impl Hasher for TopicHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type TopicMap<V> = HashMap<Topic, V, BuildHasherDefault<TopicHasher>>;

/// Where one topic's messages go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Route {
    /// `(worker, subscribers on it)`, sorted by worker, counts > 0.
    pub(crate) workers: Vec<(usize, usize)>,
    /// Total subscribers: the fanout the sampler sees.
    pub(crate) fanout: usize,
}

/// An immutable routing table.
pub(crate) type Table = TopicMap<Route>;

/// The shared, versioned routing table.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Bumped under `table`'s lock after every change (a hint; see the module docs).
    version: AtomicUsize,
    table: Mutex<Arc<Table>>,
}

/// An endpoint's view of the routes: the version it saw and the table.
#[derive(Debug, Clone)]
pub(crate) struct RouteCache {
    version: usize,
    table: Arc<Table>,
}

impl Routes {
    /// A cache of the current table.
    pub(crate) fn cache(&self) -> RouteCache {
        let version = self.version.load(Ordering::Relaxed);
        RouteCache {
            version,
            table: lock(&self.table).clone(),
        }
    }

    /// Brings `cache` up to date if the table changed since.
    #[inline]
    pub(crate) fn refresh(&self, cache: &mut RouteCache) {
        // Relaxed: a hint (see the module docs); the table itself is read under the lock.
        let v = self.version.load(Ordering::Relaxed);
        if v != cache.version {
            *cache = RouteCache {
                version: v,
                table: lock(&self.table).clone(),
            };
        }
    }

    /// Adds `delta` (+1 or -1) subscribers of `topic` on `worker`.
    pub(crate) fn update(&self, topic: Topic, worker: usize, add: bool) {
        let mut guard = lock(&self.table);
        let mut table: Table = (**guard).clone();
        let route = table.entry(topic).or_default();
        match route.workers.binary_search_by_key(&worker, |&(w, _)| w) {
            Ok(i) if add => route.workers[i].1 += 1,
            Ok(i) => {
                route.workers[i].1 -= 1;
                if route.workers[i].1 == 0 {
                    route.workers.remove(i);
                }
            }
            Err(i) if add => route.workers.insert(i, (worker, 1)),
            Err(_) => {}
        }
        route.fanout = route.workers.iter().map(|&(_, n)| n).sum();
        if route.fanout == 0 {
            table.remove(&topic);
        }
        *guard = Arc::new(table);
        // Inside the lock: a reader that sees this version then reads this table or a newer one.
        self.version.fetch_add(1, Ordering::Relaxed);
    }
}

impl RouteCache {
    /// The route of `topic`, if it has subscribers.
    #[inline]
    pub(crate) fn get(&self, topic: Topic) -> Option<&Route> {
        self.table.get(&topic)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_fanout() {
        let r = Routes::default();
        let mut c = r.cache();
        assert!(c.get(7).is_none());
        r.update(7, 1, true);
        r.update(7, 0, true);
        r.update(7, 1, true);
        assert!(c.get(7).is_none(), "stale until refreshed");
        r.refresh(&mut c);
        let route = c.get(7).unwrap();
        assert_eq!(route.workers, [(0, 1), (1, 2)]);
        assert_eq!(route.fanout, 3);
        r.update(7, 1, false);
        r.update(7, 1, false);
        r.refresh(&mut c);
        assert_eq!(c.get(7).unwrap().workers, [(0, 1)]);
        r.update(7, 0, false);
        r.refresh(&mut c);
        assert!(c.get(7).is_none(), "no subscribers: no route");
    }
}
