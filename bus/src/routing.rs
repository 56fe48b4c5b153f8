//! Topic routing: which workers have subscribers of a topic, and how many.
//!
//! Publishers read routes on every publish, and subscriptions change rarely. The shared table
//! is a vector indexed by the topic's dense index (no hashing), each entry an immutable
//! `Arc<Route>`; a change replaces one entry under a mutex, appends the topic to a bounded
//! change log and bumps a version number. Each endpoint keeps its own copy of the vector and
//! the version it saw; on publish it does one load of the version, and only when it changed
//! takes the lock and copies the entries the log names (or the whole vector, if it fell
//! further behind than the log reaches). The fast path is one atomic load and one vector index,
//! with no lock and no allocation; a change costs O(1) however many topics exist.
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

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sync::{lock, AtomicUsize, Mutex, Ordering};

/// Changes the log remembers; an endpoint further behind copies the whole table.
const LOG_LEN: usize = if cfg!(tracebus_loom) { 2 } else { 1024 };

/// Where one topic's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `(worker, subscribers on it)`, sorted by worker, counts > 0.
    pub(crate) workers: Vec<(usize, usize)>,
    /// Total subscribers: the fanout the sampler sees.
    pub(crate) fanout: usize,
}

/// A table of routes by topic index; `None` where a topic has no subscribers.
type Table = Vec<Option<Arc<Route>>>;

/// The shared, versioned routing table.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Equal to `inner.version`, bumped under its lock after every change (a hint; see the
    /// module docs).
    version: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    table: Table,
    /// Changes made since the table was created: `version` counts them.
    version: usize,
    /// The topics of the last (at most `LOG_LEN`) changes, oldest first: entry `i` is change
    /// number `version - log.len() + i`.
    log: VecDeque<u32>,
}

/// An endpoint's view of the routes: the version it saw and its copy of the table.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteCache {
    version: usize,
    table: Table,
}

impl Routes {
    /// A cache of the current table.
    pub(crate) fn cache(&self) -> RouteCache {
        let mut cache = RouteCache::default();
        // A fresh cache is "infinitely" behind: version 0 with an empty table is correct only
        // when there were no changes, which `sync` handles like any other version.
        self.sync(&mut cache);
        cache
    }

    /// Brings `cache` up to date if the table changed since.
    #[inline]
    pub(crate) fn refresh(&self, cache: &mut RouteCache) {
        // Relaxed: a hint (see the module docs); the table itself is read under the lock.
        if self.version.load(Ordering::Relaxed) != cache.version {
            self.sync(cache);
        }
    }

    #[cold]
    fn sync(&self, cache: &mut RouteCache) {
        let inner = lock(&self.inner);
        let behind = inner.version - cache.version;
        if behind <= inner.log.len() {
            if cache.table.len() < inner.table.len() {
                cache.table.resize(inner.table.len(), None);
            }
            for &topic in inner.log.range(inner.log.len() - behind..) {
                let t = topic as usize;
                cache.table[t] = inner.table[t].clone();
            }
        } else {
            cache.table = inner.table.clone();
        }
        cache.version = inner.version;
    }

    /// Adds (`add`) or removes one subscriber of topic `topic` on `worker`.
    pub(crate) fn update(&self, topic: u32, worker: usize, add: bool) {
        let mut inner = lock(&self.inner);
        let t = topic as usize;
        if inner.table.len() <= t {
            inner.table.resize(t + 1, None);
        }
        let mut route = match &inner.table[t] {
            Some(r) => (**r).clone(),
            None => Route {
                workers: Vec::new(),
                fanout: 0,
            },
        };
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
        inner.table[t] = (route.fanout > 0).then(|| Arc::new(route));
        if inner.log.len() == LOG_LEN {
            inner.log.pop_front();
        }
        inner.log.push_back(topic);
        inner.version += 1;
        // Inside the lock: a reader that sees this version then reads this table or a newer one.
        self.version.store(inner.version, Ordering::Relaxed);
    }
}

impl RouteCache {
    /// The route of topic `topic`, if it has subscribers.
    #[inline]
    pub(crate) fn get(&self, topic: u32) -> Option<&Route> {
        self.table.get(topic as usize)?.as_deref()
    }
}

#[cfg(all(test, not(tracebus_loom)))]
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

    #[test]
    fn a_cache_far_behind_the_log_copies_the_whole_table() {
        let r = Routes::default();
        let mut near = r.cache();
        let mut far = r.cache();
        for t in 0..(LOG_LEN as u32 + 10) {
            r.update(t, 0, true);
            if t % 100 == 0 {
                r.refresh(&mut near);
            }
        }
        r.update(3, 0, false);
        r.refresh(&mut near);
        r.refresh(&mut far);
        for c in [&near, &far] {
            assert!(c.get(3).is_none());
            assert_eq!(c.get(4).unwrap().fanout, 1);
            assert_eq!(c.get(LOG_LEN as u32 + 9).unwrap().fanout, 1);
        }
        assert_eq!(near.table, far.table);
    }
}
