//! `steward serve`'s webhook deliverer: reads the SQLite outbox from a cursor kept in the
//! database, fans each event out to the subscriptions that want it and attempts what is due.
//!
//! Invariants: the cursor (`meta.webhooks_outbox_cursor`) moves only after the deliveries of
//! the events before it are stored, and fanning out is idempotent, so a crash (even kill -9)
//! between the two repeats the fan-out of one batch and queues nothing twice. On the first
//! start over an existing data directory the cursor starts at the newest event: history is
//! not replayed to subscriptions made later. Event ids are `evt_<data dir id>_<outbox row>`.

use std::sync::Arc;
use std::time::Duration;

use steward_integrations::Deliverer;
use steward_local::Embedded;

const CURSOR: &str = "webhooks_outbox_cursor";
const BATCH: usize = 500;

/// Starts the deliverer; it polls every `every`.
pub fn spawn(
    embedded: &Embedded,
    every: Duration,
    deliverer: Deliverer,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let store = embedded.store.clone();
    let instance = store.instance_id()?;
    let mut cursor = match store.meta(CURSOR)? {
        Some(c) => c.parse::<i64>()?,
        None => {
            let head = store.outbox_head()?;
            store.set_meta(CURSOR, &head.to_string())?;
            head
        }
    };
    let store = Arc::clone(&store);
    Ok(tokio::spawn(async move {
        loop {
            let mut full = false;
            match store.outbox_entries(cursor, BATCH) {
                Ok(rows) if !rows.is_empty() => {
                    full = rows.len() == BATCH;
                    let last = rows.last().map_or(cursor, |r| r.0);
                    let events: Vec<_> = rows
                        .into_iter()
                        .map(|(id, at, e)| (format!("evt_{instance}_{id}"), at, e))
                        .collect();
                    match deliverer.fan_out(&events).await {
                        Ok(_) => match store.set_meta(CURSOR, &last.to_string()) {
                            Ok(()) => cursor = last,
                            Err(e) => tracing::warn!(error = %e, "cannot save the webhook cursor"),
                        },
                        Err(e) => tracing::warn!(error = %e, "cannot queue webhook deliveries"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the outbox for webhooks"),
            }
            if let Err(e) = deliverer.deliver_due(100).await {
                tracing::warn!(error = %e, "webhook deliveries failed to run");
            }
            if !full {
                tokio::time::sleep(every).await;
            }
        }
    }))
}
