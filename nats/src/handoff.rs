//! The queue between the bus workers that export and an export task: bounded, emptied whole by
//! the task; the bus side never waits for the task beyond a lock it holds for a swap.
//!
//! A deque behind a mutex. An offer takes the lock once, pushes, and wakes the task only if
//! the task said, under the same lock, that it found the queue empty and is waiting: one
//! wake-up per batch, however many messages the batch holds. The task swaps the whole deque
//! for its empty one under one lock, so it pays nothing per message to take them (a tokio
//! channel took a semaphore permit back, under a lock, for every message, and the sender
//! touched the receiver's waker each time). Closing is under the lock too: once
//! [`Receiver::close`] returns, no offer gets in.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Why an offer was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds its capacity.
    Full,
    /// The task closed the queue (shutdown) or is gone.
    Closed,
}

/// What both ends share.
#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the task; a notification sent before it waits is kept (a permit).
    notify: Notify,
    capacity: usize,
    /// Messages accepted and not yet finished by the task (the bridge reads it at `flush` and
    /// shutdown); raised under the lock before the task can see the message.
    unfinished: Arc<AtomicU64>,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    /// The task found the queue empty and waits for a notification.
    waiting: bool,
    /// No more offers are taken.
    closed: bool,
    /// Senders alive; none left and the queue empty ends the task.
    senders: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The bus side: cheap to clone, never blocks for long (one uncontended lock per offer).
#[derive(Debug)]
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The task's side.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue of `capacity` (at least 1) counting accepted messages in `unfinished`.
pub(crate) fn channel<T>(capacity: usize, unfinished: Arc<AtomicU64>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waiting: false,
            closed: false,
            senders: 1,
        }),
        notify: Notify::new(),
        capacity: capacity.max(1),
        unfinished,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `value` unless the queue is full or closed; wakes the task if it waits.
    pub(crate) fn offer(&self, value: T) -> Result<(), Refused> {
        let mut s = self.shared.lock();
        if s.closed {
            return Err(Refused::Closed);
        }
        if s.queue.len() >= self.shared.capacity {
            return Err(Refused::Full);
        }
        s.queue.push_back(value);
        self.shared.unfinished.fetch_add(1, Ordering::Relaxed);
        let wake = std::mem::take(&mut s.waiting);
        drop(s);
        if wake {
            self.shared.notify.notify_one();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.senders -= 1;
        let wake = s.senders == 0 && std::mem::take(&mut s.waiting);
        drop(s);
        if wake {
            self.shared.notify.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// Moves queued messages, at most `limit` (at least 1), to the back of `batch`, waiting
    /// while there are none; returns how many. 0: closed, or every sender is gone, and nothing
    /// is left. Cancel-safe: a message is taken only by a call that returns it.
    pub(crate) async fn recv_many(&mut self, batch: &mut VecDeque<T>, limit: usize) -> usize {
        loop {
            {
                let mut s = self.shared.lock();
                let n = s.queue.len().min(limit.max(1));
                if n > 0 {
                    if n == s.queue.len() && batch.is_empty() {
                        // The whole queue: swap buffers (the queue keeps the batch's empty
                        // one and its capacity).
                        std::mem::swap(&mut s.queue, batch);
                    } else {
                        batch.extend(s.queue.drain(..n));
                    }
                    return n;
                }
                if s.closed || s.senders == 0 {
                    return 0;
                }
                s.waiting = true;
            }
            self.shared.notify.notified().await;
        }
    }

    /// The next message, waiting while there is none; `None`: closed, or every sender is
    /// gone, and nothing is left. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut s = self.shared.lock();
                if let Some(value) = s.queue.pop_front() {
                    return Some(value);
                }
                if s.closed || s.senders == 0 {
                    return None;
                }
                s.waiting = true;
            }
            self.shared.notify.notified().await;
        }
    }

    /// Refuses every later offer (counted by the caller as closed); what is queued stays to be
    /// received.
    pub(crate) fn close(&mut self) {
        self.shared.lock().closed = true;
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn bounded_batched_and_closed() {
        let unfinished = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = channel(3, unfinished.clone());
        for v in 0..3 {
            assert_eq!(tx.offer(v), Ok(()));
        }
        assert_eq!(tx.offer(3), Err(Refused::Full));
        assert_eq!(unfinished.load(Ordering::Relaxed), 3);
        let mut batch = VecDeque::new();
        assert_eq!(block_on(rx.recv_many(&mut batch, 2)), 2);
        assert_eq!(block_on(rx.recv_many(&mut batch, 256)), 1);
        assert_eq!(batch, [0, 1, 2]);
        batch.clear();
        assert_eq!(tx.offer(4), Ok(()));
        rx.close();
        assert_eq!(tx.offer(5), Err(Refused::Closed));
        assert_eq!(
            block_on(rx.recv_many(&mut batch, 256)),
            1,
            "queued before close"
        );
        assert_eq!(
            block_on(rx.recv_many(&mut batch, 256)),
            0,
            "closed and empty"
        );
        assert_eq!(batch, [4]);
        assert_eq!(block_on(rx.recv()), None);
    }

    #[test]
    fn a_waiting_task_is_woken_and_ends_with_its_senders() {
        let (tx, mut rx) = channel::<u32>(8, Arc::new(AtomicU64::new(0)));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let task = rt.spawn(async move {
            let mut got = Vec::new();
            let mut batch = VecDeque::new();
            while rx.recv_many(&mut batch, 256).await > 0 {
                got.extend(batch.drain(..));
            }
            got
        });
        let tx2 = tx.clone();
        assert_eq!(tx2.offer(u32::MAX), Ok(()));
        for v in 0..100u32 {
            while tx.offer(v) == Err(Refused::Full) {
                std::thread::yield_now();
            }
        }
        drop(tx);
        drop(tx2);
        let got = rt.block_on(task).unwrap();
        let want: Vec<u32> = std::iter::once(u32::MAX).chain(0..100).collect();
        assert_eq!(got, want);
    }
}
