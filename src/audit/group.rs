//! Group commit without a writer thread. A request's record is encoded on its own thread, then queued
//! on its thread's queue; the first record of a group schedules the group's write as a task of the
//! runtime the request runs on, which runs once the requests already able to run have had their turn:
//! every record those requests submitted meanwhile goes out in the same `write`, and each request's
//! receipt resolves when the group holding its record is stored. Outside a runtime the record is
//! written at once.
//!
//! One event-loop turn costs one `write` however many requests it served, and no thread hands records
//! or receipts to another: each serving thread has a queue of its own ([`PerThread`]), so the write
//! that resolves a receipt runs on the thread whose request waits for it. A dedicated writer thread, or
//! one queue for all threads, would cost thread wake-ups per record (to hand the record over, to hand
//! the receipt back), which is much of a request's cost at tens of thousands of requests per second.
//! The threads' groups take turns at the store. When the store must be synced to the disk, every thread
//! shares one queue instead (a sync costs milliseconds: one for all threads' records beats one per
//! thread, each waiting for the others'), and the sync runs where the group is written, with the runtime
//! told that the thread blocks (`block_in_place`) where it allows it.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{AuditEntry, AuditError, AuditReceipt};
use crate::per_thread::{self, PerThread};

/// What a store does with a group of records, in order; one group at a time.
pub trait Store: Send {
    /// A record made ready to store (encoded, its columns derived) by the request that submits it,
    /// before it waits for the store: that work needs no lock and runs on every thread at once.
    type Record: Send + 'static;

    /// Makes `entry` ready for [`Store::append`].
    fn prepare(entry: &AuditEntry) -> Result<Self::Record, AuditError>;

    /// Appends the records (and makes them as durable as the store promises).
    fn append(&mut self, records: &[Self::Record]) -> Result<(), AuditError>;
}

type Ack = tokio::sync::oneshot::Sender<Result<(), AuditError>>;

struct Queue<R> {
    /// True while a group's write is scheduled or under way.
    busy: bool,
    records: Vec<R>,
    acks: Vec<Ack>,
}

/// A store written in groups: one write per event-loop turn, whatever the number of records.
pub struct GroupCommit<S: Store> {
    /// Each thread's records waiting for their group's write.
    queues: PerThread<Mutex<Queue<S::Record>>>,
    store: Mutex<S>,
    blocking: bool,
}

impl<S: Store> std::fmt::Debug for GroupCommit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("blocking", &self.blocking).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Store + 'static> GroupCommit<S> {
    /// Groups writes to `store`; `blocking` when an append may wait on the disk (a sync).
    pub fn new(store: S, blocking: bool) -> GroupCommit<S> {
        let queues = PerThread::new(|| Mutex::new(Queue { busy: false, records: Vec::new(), acks: Vec::new() }));
        GroupCommit { queues, store: Mutex::new(store), blocking }
    }

    /// Stores `entry` with whatever else is waiting.
    pub fn submit(self: &Arc<Self>, entry: &AuditEntry) -> AuditReceipt {
        let record = match S::prepare(entry) {
            Ok(record) => record,
            Err(e) => return AuditReceipt::done(Err(e)),
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        let slot = self.slot();
        let mut queue = lock(self.queues.get(slot));
        if queue.busy || runtime.is_some() {
            let (ack, receipt) = AuditReceipt::pending();
            queue.records.push(record);
            queue.acks.push(ack);
            if let (false, Some(runtime)) = (queue.busy, runtime) {
                // The group's first record: its write runs after the requests ready now.
                queue.busy = true;
                let write = GroupWrite { group: Some(self.clone()), slot };
                // A runtime of several workers runs a task spawned by a task right after it (its LIFO
                // slot): there the write first lets the other requests ready now submit theirs.
                let many_workers = runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
                runtime.spawn(async move {
                    if many_workers {
                        tokio::task::yield_now().await;
                    }
                    write.run();
                });
            }
            return receipt;
        }
        // No runtime: written here, with whatever queues up meanwhile.
        queue.busy = true;
        drop(queue);
        let own = self.write(std::slice::from_ref(&record), false);
        self.drain(slot, false);
        AuditReceipt::done(own)
    }

    /// The queue the calling thread submits to: its own, unless each write waits on the disk. A synced
    /// write takes milliseconds, and queues of their own would make every thread wait for the others'
    /// syncs and then sync again for itself; one queue shared by all threads syncs once for all of them.
    fn slot(&self) -> usize {
        if self.blocking { 0 } else { per_thread::slot() }
    }

    /// Resolves once everything submitted so far is stored.
    pub fn flush(&self) -> AuditReceipt {
        let mut waits = Vec::new();
        for queue in self.queues.iter() {
            let mut queue = lock(queue);
            if queue.busy {
                // The write under way drains its queue before it stops: this empty group rides along.
                let (ack, receipt) = AuditReceipt::pending();
                queue.acks.push(ack);
                waits.push(receipt);
            }
        }
        AuditReceipt::all(waits)
    }

    /// Reads the store (for what it keeps besides the records, such as where it writes).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        f(&mut lock(&self.store))
    }

    /// Writes what slot `slot` queued, group after group, until nothing waits there. `in_task` when it
    /// runs as a runtime's task, which may be told that the thread blocks.
    fn drain(&self, slot: usize, in_task: bool) {
        loop {
            let mut queue = lock(self.queues.get(slot));
            if queue.acks.is_empty() {
                queue.busy = false;
                return;
            }
            let records = std::mem::take(&mut queue.records);
            let acks = std::mem::take(&mut queue.acks);
            drop(queue);
            let result = self.write(&records, in_task);
            for ack in acks {
                let _ = ack.send(result.clone());
            }
        }
    }

    fn write(&self, records: &[S::Record], in_task: bool) -> Result<(), AuditError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut store = lock(&self.store);
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if self.blocking && in_task && multi_thread {
            tokio::task::block_in_place(|| store.append(records))
        } else {
            store.append(records)
        }
    }
}

/// A scheduled group write of one slot's queue, owned by the task that runs it. A task dropped before
/// it ran (its runtime shutting down) writes the group where it is dropped, without the runtime, so
/// that no record waits for a write that will never come and the queue takes the next group.
struct GroupWrite<S: Store + 'static> {
    group: Option<Arc<GroupCommit<S>>>,
    slot: usize,
}

impl<S: Store + 'static> GroupWrite<S> {
    fn run(mut self) {
        if let Some(group) = self.group.take() {
            group.drain(self.slot, true);
        }
    }
}

impl<S: Store + 'static> Drop for GroupWrite<S> {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            group.drain(self.slot, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Default)]
    struct Counting {
        groups: Vec<usize>,
        ids: Vec<String>,
    }

    impl Store for Counting {
        type Record = String;

        fn prepare(entry: &AuditEntry) -> Result<String, AuditError> {
            Ok(entry.request_id.clone())
        }

        fn append(&mut self, records: &[String]) -> Result<(), AuditError> {
            std::thread::sleep(std::time::Duration::from_millis(1));
            self.groups.push(records.len());
            self.ids.extend(records.iter().cloned());
            Ok(())
        }
    }

    #[test]
    fn a_group_whose_runtime_stops_before_its_write_is_still_written() {
        let group = Arc::new(GroupCommit::new(Counting::default(), false));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // Submitted within the runtime, which is dropped before its tasks run.
        let guard = runtime.enter();
        let receipt = group.submit(&AuditEntry { request_id: "R-1".into(), ..AuditEntry::default() });
        drop(guard);
        drop(runtime);
        let done = futures_util::FutureExt::now_or_never(receipt).expect("resolved when the runtime stopped");
        assert_eq!(done, Ok(()));
        // The store is free again: a record submitted outside any runtime is written at once.
        let later = group.submit(&AuditEntry { request_id: "R-2".into(), ..AuditEntry::default() });
        assert_eq!(futures_util::FutureExt::now_or_never(later), Some(Ok(())));
        group.with_store(|s| assert_eq!(s.ids, ["R-1", "R-2"]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_record_is_stored_once_and_concurrent_ones_share_writes() {
        let group = Arc::new(GroupCommit::new(Counting::default(), false));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let group = group.clone();
                tokio::spawn(async move {
                    let entry = AuditEntry { request_id: format!("R-{i}"), ..AuditEntry::default() };
                    group.submit(&entry).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        group.flush().await.unwrap();
        group.with_store(|s| {
            let mut ids = s.ids.clone();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 200, "each record once");
            assert!(s.groups.len() < 200, "some records shared a write: {:?}", s.groups);
        });
    }

    #[test]
    fn a_flush_waits_for_the_groups_of_every_thread() {
        let group = Arc::new(GroupCommit::new(Counting::default(), false));
        // Two threads, each with its own runtime and queue, each with a group scheduled but not yet run.
        let (entered, go) = (std::sync::Barrier::new(3), std::sync::Barrier::new(3));
        std::thread::scope(|scope| {
            for name in ["R-a", "R-b"] {
                let (group, entered, go) = (&group, &entered, &go);
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    runtime.block_on(async {
                        let receipt = group.submit(&AuditEntry { request_id: name.into(), ..AuditEntry::default() });
                        entered.wait();
                        go.wait();
                        receipt.await.unwrap();
                    });
                });
            }
            entered.wait();
            let flushed = group.flush();
            go.wait();
            tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(flushed).unwrap();
            group.with_store(|s| {
                let mut ids = s.ids.clone();
                ids.sort();
                assert_eq!(ids, ["R-a", "R-b"], "both threads' records were stored when the flush resolved");
            });
        });
    }

    #[test]
    fn a_store_that_syncs_is_written_in_groups_shared_by_every_thread() {
        let group = Arc::new(GroupCommit::new(Counting::default(), true));
        let (entered, go) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            // This thread's record schedules a group on its runtime, not run yet.
            let first = {
                let _inside = runtime.enter();
                group.submit(&AuditEntry { request_id: "R-a".into(), ..AuditEntry::default() })
            };
            let other = scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let receipt = {
                    let _inside = runtime.enter();
                    group.submit(&AuditEntry { request_id: "R-b".into(), ..AuditEntry::default() })
                };
                entered.wait();
                go.wait();
                runtime.block_on(receipt).unwrap();
            });
            entered.wait();
            go.wait();
            runtime.block_on(first).unwrap();
            other.join().unwrap();
        });
        group.with_store(|s| assert_eq!(s.groups, [2], "both threads' records in one synced write"));
    }
}
