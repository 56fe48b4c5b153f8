//! Typed, named topics: [`Topic<T>`], the `Copy` handle publishers and subscribers use, and the
//! bus's registry that gives each name a dense index.
//!
//! A topic is created once by name ([`crate::Bus::topic`]); asking again with the same name and
//! type returns the same handle, with another type a [`TopicError::TypeMismatch`]. The handle
//! holds the topic's index (dense: 0, 1, 2, ... in creation order) and the id of its bus, so
//! the hot path finds a topic's route and subscribers by indexing a vector: no hashing, no
//! lock. Names are used where people read them: in spans (`publish orders`), in
//! [`crate::Message::topic`], and by bridges.
//!
//! Memory per topic: the registry keeps the name (one `Arc<str>`), an entry in a name map and
//! a type record, about 100 bytes plus the name's length; each endpoint's route cache holds 8
//! bytes per topic up to the highest index that ever had subscribers, and each worker 40
//! bytes per topic up to the highest index subscribed on it.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use std::sync::atomic::{AtomicU32, Ordering};

use crate::sync::{lock, Mutex};

/// A typed, named topic of one bus: a `Copy` handle (see the module docs).
pub struct Topic<T> {
    index: u32,
    bus: u32,
    /// `fn() -> T`: the handle is `Send`, `Sync` and `Copy` whatever `T` is.
    _type: PhantomData<fn() -> T>,
}

impl<T> Topic<T> {
    /// The topic's index on its bus (dense, in creation order).
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Topic<T> {}
impl<T> PartialEq for Topic<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.bus == other.bus
    }
}
impl<T> Eq for Topic<T> {}
impl<T> Hash for Topic<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.bus, self.index).hash(state);
    }
}
impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("index", &self.index)
            .field("bus", &self.bus)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

/// Why a topic could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is taken by a topic of another message type.
    #[error("topic {name:?} carries {existing}, not {requested}")]
    TypeMismatch {
        /// The topic's name.
        name: String,
        /// The type the topic was created with.
        existing: &'static str,
        /// The type asked for now.
        requested: &'static str,
    },
    /// A topic needs a name.
    #[error("a topic name must not be empty")]
    EmptyName,
    /// The bus has as many topics as an index can number.
    #[error("the bus already has {max} topics")]
    TooMany {
        /// The most topics a bus can have.
        max: usize,
    },
}

/// One registered topic.
struct Entry {
    name: Arc<str>,
    type_id: TypeId,
    type_name: &'static str,
}

/// The bus's topics: name -> index, and index -> name and type.
pub(crate) struct Registry {
    /// This bus's id, put into every handle.
    bus: u32,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_name: HashMap<Arc<str>, u32>,
    topics: Vec<Entry>,
}

/// Bus ids, so a handle from another bus is recognised.
static NEXT_BUS: AtomicU32 = AtomicU32::new(1);

impl Registry {
    /// An empty registry with a fresh bus id.
    pub(crate) fn new() -> Registry {
        // Relaxed: a unique number is all that is needed (the RMW gives it).
        // (std's atomic even under loom: a process-wide counter, not part of any protocol).
        let bus = NEXT_BUS.fetch_add(1, Ordering::Relaxed);
        Registry {
            bus,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The topic named `name` carrying `T`, made if new.
    pub(crate) fn topic<T: 'static>(&self, name: &str) -> Result<Topic<T>, TopicError> {
        if name.is_empty() {
            return Err(TopicError::EmptyName);
        }
        let mut inner = lock(&self.inner);
        let handle = |index| Topic {
            index,
            bus: self.bus,
            _type: PhantomData,
        };
        if let Some(&index) = inner.by_name.get(name) {
            let e = &inner.topics[index as usize];
            return if e.type_id == TypeId::of::<T>() {
                Ok(handle(index))
            } else {
                Err(TopicError::TypeMismatch {
                    name: name.to_owned(),
                    existing: e.type_name,
                    requested: std::any::type_name::<T>(),
                })
            };
        }
        let index = u32::try_from(inner.topics.len()).map_err(|_| TopicError::TooMany {
            max: u32::MAX as usize,
        })?;
        let name: Arc<str> = Arc::from(name);
        inner.topics.push(Entry {
            name: Arc::clone(&name),
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        });
        inner.by_name.insert(name, index);
        Ok(handle(index))
    }

    /// The name of topic `index`.
    pub(crate) fn name(&self, index: u32) -> Option<Arc<str>> {
        lock(&self.inner)
            .topics
            .get(index as usize)
            .map(|e| Arc::clone(&e.name))
    }

    /// Panics unless `topic` belongs to this bus (a handle from another bus names another
    /// topic, or none).
    #[inline]
    pub(crate) fn check<T>(&self, topic: &Topic<T>) {
        check(self.bus, topic);
    }

    /// This registry's bus id (what [`check`] compares topics with).
    pub(crate) fn id(&self) -> u32 {
        self.bus
    }
}

/// Panics unless `topic` belongs to the bus whose id is `bus` (see [`Registry::check`]).
#[inline(always)]
pub(crate) fn check<T>(bus: u32, topic: &Topic<T>) {
    if topic.bus != bus {
        foreign_topic(topic.bus, bus);
    }
}

#[cold]
#[inline(never)]
fn foreign_topic(theirs: u32, ours: u32) -> ! {
    panic!("tracebus: a topic of bus {theirs} was used on bus {ours}; topics belong to the bus that made them")
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_type_same_topic() {
        let r = Registry::new();
        let a: Topic<u64> = r.topic("orders").unwrap();
        let b: Topic<u64> = r.topic("orders").unwrap();
        assert_eq!(a, b);
        let q: Topic<u32> = r.topic("quotes").unwrap();
        assert_eq!((a.index(), q.index()), (0, 1));
        assert_eq!(r.name(1).as_deref(), Some("quotes"));
        assert_eq!(r.name(2), None);
    }

    #[test]
    fn same_name_other_type_is_refused_naming_both() {
        let r = Registry::new();
        let _: Topic<u64> = r.topic("orders").unwrap();
        let e = r.topic::<[u8; 4]>("orders").unwrap_err();
        assert_eq!(
            e,
            TopicError::TypeMismatch {
                name: "orders".into(),
                existing: "u64",
                requested: "[u8; 4]",
            }
        );
        assert!(e.to_string().contains("u64") && e.to_string().contains("[u8; 4]"));
        assert_eq!(r.topic::<u8>(""), Err(TopicError::EmptyName));
    }

    #[test]
    #[should_panic(expected = "topics belong to the bus that made them")]
    fn a_handle_from_another_registry_is_refused() {
        let (a, b) = (Registry::new(), Registry::new());
        let t: Topic<u8> = a.topic("x").unwrap();
        b.check(&t);
    }
}
