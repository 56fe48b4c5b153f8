//! Topic routing: which workers have subscribers of a topic, and how many; and the per-topic
//! "fast entry" that lets the common publish skip everything else.
//!
//! Publishers read routes on every publish, and subscriptions change rarely. The shared table
//! is a vector indexed by the topic's dense index (no hashing), each entry an immutable
//! `Arc<Route>`; a change replaces one entry under a mutex, appends the topic to a bounded
//! change log and bumps the table's version. Each endpoint keeps its own copy of the vector and
//! the version it copied; when it is behind, it takes the lock and copies the entries the log
//! names (or the whole vector, if it fell further behind than the log reaches). A change costs
//! O(1) however many topics exist.
//!
//! Beside its copy, each endpoint keeps a fast entry per topic: the one destination worker and
//! the fanout, for a topic whose subscribers are all on one worker, while the bus neither
//! traces nor stamps publish times (else "none", and the publish takes the general path). A
//! publish checks one number first, the [`Epoch`]: bumped by every route change and by the
//! tracing switch, the two things fast entries depend on. Unchanged since the endpoint last
//! looked, the fast entry is current: one atomic load and one vector index, no lock, no
//! allocation, no other flag.
//!
//! The epoch is read `Relaxed` on the fast path: only a hint to re-sync. A re-sync loads it with
//! `Acquire` *before* it locks the table and reads the tracing switch; the bumps are `Release`
//! (a route change bumps inside the critical section that installed the table, the switch
//! after its store). So a re-sync sees at least the table and the switch of the epoch it
//! records, and anything newer bumps the epoch again, which the next publish sees. A publish
//! that happens after `subscribe` returned or after the switch was flipped (the only publishes
//! the bus makes promises about) loads that epoch or a later one.
//!
//! Ordering with the workers (see `worker.rs`): the worker that installs a subscriber publishes
//! its route only then, so no message can reach a worker that does not know the handler yet;
//! on unsubscribe it withdraws the route first and drops the handler after.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::sync::{lock, AtomicUsize, Mutex, Ordering};

/// Changes the log remembers; an endpoint further behind copies the whole table.
const LOG_LEN: usize = if cfg!(tracebus_loom) { 2 } else { 1024 };

/// A fast entry meaning "take the general path".
const NO_FAST: u64 = u64::MAX;

/// Bumped (`Release`) by every change that fast entries depend on: a route change and the
/// tracing switch (which holds a clone). On a line of its own: every publish reads it.
pub type Epoch = Arc<CachePadded<AtomicUsize>>;

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
pub struct Routes {
    /// See [`Epoch`]; bumped under `inner`'s lock after every route change.
    epoch: Epoch,
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

/// An endpoint's view of the routes: its copy of the table, the table version it copied, the
/// epoch it was last brought up to date at, and its fast entries.
#[derive(Debug, Clone, Default)]
pub struct RouteCache {
    /// The routes' epoch, held here so that the check on every publish is one load through
    /// the endpoint's own state rather than through the bus's.
    epoch: Epoch,
    /// The epoch at the last re-sync.
    seen: usize,
    /// The table version copied.
    version: usize,
    table: Table,
    /// Per topic, `fanout << 32 | worker` for a topic whose subscribers are on one worker,
    /// when the publish may skip tracing and timing; [`NO_FAST`] otherwise. As long as
    /// `table` (shorter: the topics past its end have no route).
    fast: Vec<u64>,
    /// Whether the fast entries were computed for an untraced, untimed bus.
    fast_ok: bool,
}

/// The fast entry for `route` (see [`RouteCache::fast`]).
fn fast_entry(route: &Option<Arc<Route>>, fast_ok: bool) -> u64 {
    match route.as_deref() {
        Some(Route { workers, fanout }) if fast_ok => match workers.as_slice() {
            [(w, _)] if *fanout <= u32::MAX as usize => (*fanout as u64) << 32 | *w as u64,
            _ => NO_FAST,
        },
        _ => NO_FAST,
    }
}

impl Routes {
    /// The epoch, for the tracing switch to bump too.
    pub fn epoch(&self) -> Epoch {
        Arc::clone(&self.epoch)
    }

    /// A cache of the current table, its fast entries computed with `fast_ok`.
    pub fn cache(&self, fast_ok: impl FnOnce() -> bool) -> RouteCache {
        let mut cache = RouteCache {
            epoch: self.epoch(),
            // Never an epoch's value: the first publish re-syncs (and sees later changes).
            seen: usize::MAX,
            ..RouteCache::default()
        };
        self.sync(&mut cache, fast_ok);
        cache
    }

    /// Brings `cache` up to date: the table entries that changed since, and the fast entries,
    /// computed with `fast_ok()` (read after the epoch).
    #[cold]
    #[inline(never)]
    pub fn sync(&self, cache: &mut RouteCache, fast_ok: impl FnOnce() -> bool) {
        // Acquire, before the table and the switch are read: pairs with the bumps' Release.
        let seen = self.epoch.load(Ordering::Acquire);
        let fast_ok = fast_ok();
        let inner = lock(&self.inner);
        let behind = inner.version - cache.version;
        let all = fast_ok != cache.fast_ok || behind > inner.log.len();
        if cache.table.len() < inner.table.len() {
            cache.table.resize(inner.table.len(), None);
            cache.fast.resize(inner.table.len(), NO_FAST);
        }
        if all {
            cache.table.clone_from(&inner.table);
            cache.fast.clear();
            cache
                .fast
                .extend(cache.table.iter().map(|r| fast_entry(r, fast_ok)));
        } else {
            for &topic in inner.log.range(inner.log.len() - behind..) {
                let t = topic as usize;
                cache.table[t] = inner.table[t].clone();
                cache.fast[t] = fast_entry(&cache.table[t], fast_ok);
            }
        }
        cache.version = inner.version;
        cache.fast_ok = fast_ok;
        cache.seen = seen;
    }

    /// Adds (`add`) or removes one subscriber of topic `topic` on `worker`.
    pub fn update(&self, topic: u32, worker: usize, add: bool) {
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
        // Inside the lock, Release: a re-sync that sees this epoch then reads this table or a
        // newer one.
        self.epoch.fetch_add(1, Ordering::Release);
    }
}

impl RouteCache {
    /// Whether this cache is up to date: nothing its fast entries depend on has changed since.
    #[inline(always)]
    pub fn is_current(&self) -> bool {
        // Relaxed: a hint to re-sync (see the module docs).
        self.epoch.load(Ordering::Relaxed) == self.seen
    }

    /// Brings this cache up to date from `routes` if anything it depends on changed, its fast
    /// entries computed with `fast_ok()` (the publish path's one check, then a cold re-sync).
    #[inline(always)]
    pub fn refresh(&mut self, routes: &Routes, fast_ok: impl FnOnce() -> bool) {
        if !self.is_current() {
            routes.sync(self, fast_ok);
        }
    }

    /// The route of topic `topic`, if it has subscribers.
    #[inline]
    pub(crate) fn get(&self, topic: u32) -> Option<&Route> {
        self.table.get(topic as usize)?.as_deref()
    }

    /// The fast entry of topic `topic`: `(worker, fanout)` when all its subscribers are on
    /// one worker and the bus neither traces nor stamps publish times.
    #[inline(always)]
    pub fn fast(&self, topic: u32) -> Option<(usize, usize)> {
        match self.fast.get(topic as usize) {
            Some(&f) if f != NO_FAST => Some((f as u32 as usize, (f >> 32) as usize)),
            _ => None,
        }
    }
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_fanout() {
        let r = Routes::default();
        let mut c = r.cache(|| true);
        assert!(c.get(7).is_none());
        r.update(7, 1, true);
        r.update(7, 0, true);
        r.update(7, 1, true);
        assert!(c.get(7).is_none(), "stale until refreshed");
        c.refresh(&r, || true);
        let route = c.get(7).unwrap();
        assert_eq!(route.workers, [(0, 1), (1, 2)]);
        assert_eq!(route.fanout, 3);
        r.update(7, 1, false);
        r.update(7, 1, false);
        c.refresh(&r, || true);
        assert_eq!(c.get(7).unwrap().workers, [(0, 1)]);
        r.update(7, 0, false);
        c.refresh(&r, || true);
        assert!(c.get(7).is_none(), "no subscribers: no route");
    }

    #[test]
    fn a_cache_far_behind_the_log_copies_the_whole_table() {
        let r = Routes::default();
        let mut near = r.cache(|| true);
        let mut far = r.cache(|| true);
        for t in 0..(LOG_LEN as u32 + 10) {
            r.update(t, 0, true);
            if t % 100 == 0 {
                near.refresh(&r, || true);
            }
        }
        r.update(3, 0, false);
        near.refresh(&r, || true);
        far.refresh(&r, || true);
        for c in [&near, &far] {
            assert!(c.get(3).is_none());
            assert_eq!(c.get(4).unwrap().fanout, 1);
            assert_eq!(c.get(LOG_LEN as u32 + 9).unwrap().fanout, 1);
        }
        assert_eq!(near.table, far.table);
    }

    #[test]
    fn fast_entries_follow_routes_and_the_switch() {
        let r = Routes::default();
        let mut c = r.cache(|| true);
        r.update(2, 1, true);
        r.update(2, 1, true);
        r.update(5, 0, true);
        r.update(5, 1, true);
        c.refresh(&r, || true);
        assert_eq!(c.fast(2), Some((1, 2)), "one worker, two subscribers");
        assert_eq!(c.fast(5), None, "two workers: the general path");
        assert_eq!(c.fast(3), None, "no route");
        assert_eq!(c.fast(99), None, "past the table");
        // The switch (say tracing on) bumps the epoch; a re-sync recomputes every entry.
        r.epoch().fetch_add(1, Ordering::Release);
        assert!(!c.is_current());
        r.sync(&mut c, || false);
        assert_eq!(c.fast(2), None, "traced: the general path");
        r.epoch().fetch_add(1, Ordering::Release);
        r.sync(&mut c, || true);
        assert_eq!(c.fast(2), Some((1, 2)));
        assert!(c.is_current());
    }
}
