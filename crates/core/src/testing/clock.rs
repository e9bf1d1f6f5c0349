//! A clock that moves only when told to, and ids that count.
//!
//! Invariants: [`ManualClock::now`] returns the same instant until [`ManualClock::advance`]
//! or [`ManualClock::set`] changes it; [`SequentialIds`] hands out `<prefix>-<n>` with one
//! counter per prefix, starting at 1, so a test's ids are the same on every run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::ports::{Clock, IdGen};

/// A [`Clock`] for tests: time stands still until the test moves it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl Default for ManualClock {
    /// Starts at 2026-12-01T09:00:00Z.
    fn default() -> Self {
        Self::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
                .single()
                .expect("a valid literal time"),
        )
    }
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a duration chrono can represent");
        let mut now = self.lock();
        *now += by;
    }

    /// Sets the time to `at` (forward or back).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic elsewhere cannot leave a half-written instant behind: keep going.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// An [`IdGen`] for tests: `pr-1`, `pr-2`, `inc-1`, ... (one counter per prefix).
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: Mutex<HashMap<String, u64>>,
}

impl IdGen for SequentialIds {
    fn id(&self, prefix: &str) -> String {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let n = next.entry(prefix.to_owned()).or_insert(0);
        *n += 1;
        format!("{prefix}-{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let clock = ManualClock::default();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - t0, chrono::Duration::seconds(90));
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }

    #[test]
    fn sequential_ids_count_per_prefix() {
        let ids = SequentialIds::default();
        assert_eq!(ids.id("pr"), "pr-1");
        assert_eq!(ids.id("pr"), "pr-2");
        assert_eq!(ids.id("inc"), "inc-1");
    }
}
