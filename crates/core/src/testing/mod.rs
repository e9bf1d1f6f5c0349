//! In-memory ports, a manual clock and a harness for testing governance rules without I/O
//! (cargo feature `testing`, off by default).
//!
//! What it offers:
//! - [`MemoryStore`]: the [`Registry`](crate::ports::Registry) and
//!   [`AuditLog`](crate::ports::AuditLog) ports in memory, with the semantics of the SQLite
//!   store (`crates/local/src/store/`), which is the reference: all-or-nothing commits,
//!   `Conflict` on a failed condition, idempotency records, audit sequence numbers, the
//!   Merkle head and a signed checkpoint per commit, and listings in key order with cursors.
//! - [`MemoryEvidence`], [`ManualClock`], [`SequentialIds`] and [`RecordingWorkflows`]: the
//!   other ports, deterministic and observable.
//! - [`Harness`]: a [`Governance`](crate::Governance) over all of them, built from a policy, and
//!   [`Cast`]: callers with the usual roles.
//!
//! Invariants: nothing here does I/O, sleeps or spawns; every future these ports return is
//! ready on its first poll, so [`block_on`] runs any governance call over them to completion
//! without a runtime. Time moves only when a test moves the [`ManualClock`].

mod clock;
mod evidence;
mod harness;
mod store;
mod webhooks;
mod workflows;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub use clock::{ManualClock, SequentialIds};
pub use evidence::MemoryEvidence;
pub use harness::{caller, manifest, staging_evaluation, vn, Cast, Harness};
pub use store::MemoryStore;
pub use webhooks::{MemoryDeliveries, MemorySecrets};
pub use workflows::{RecordingWorkflows, WorkflowCall};

/// Runs `future` to completion on the current thread.
///
/// Core has no async runtime (and must not depend on one). Over the in-memory ports a
/// governance call never waits for anything: every `.await` inside it is on a future that is
/// already complete, so one poll finishes it. A future that does pend (it waits on real I/O,
/// a timer or a channel) is a misuse and panics instead of hanging.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!(
            "block_on: the future waited for something; only futures over the in-memory ports \
             (which never pend) can run here"
        ),
    }
}
