//! `steward webhooks list|get|put|delete|deliveries`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Value};

use super::{client, show};
use crate::cli::{IntegrationsCmd, WebhooksCmd};
use crate::render;
use steward_integrations::{Integrations, IntegrationsConfig};

pub async fn run(cmd: WebhooksCmd) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        WebhooksCmd::List(a) => show(&a.conn, client(&a.conn)?.webhooks(), render::webhooks).await,
        WebhooksCmd::Get(a) => {
            show(&a.conn, client(&a.conn)?.webhook(&a.id), render::webhook).await
        }
        WebhooksCmd::Delete(a) => {
            let c = client(&a.conn)?;
            show(&a.conn, c.delete_webhook(&a.id), |_| {
                format!("deleted webhook {}", a.id)
            })
            .await
        }
        WebhooksCmd::Deliveries(a) => {
            let c = client(&a.conn)?;
            show(
                &a.conn,
                c.webhook_deliveries(&a.id, a.limit),
                render::deliveries,
            )
            .await
        }
        WebhooksCmd::Put(a) => {
            let mut body = json!({"events": a.events});
            if let Some(url) = &a.url {
                body["url"] = json!(url);
            }
            let generated = a.generate_secret.then(new_secret);
            let secret = match (&generated, &a.secret_file) {
                (Some(s), _) => Some(s.clone()),
                (None, Some(path)) => Some(read_secret(path)?),
                (None, None) => None,
            };
            if let Some(s) = &secret {
                body["secret"] = Value::String(s.clone());
            }
            let c = client(&a.conn)?;
            let code = show(&a.conn, c.put_webhook(&a.id, &body), render::webhook).await;
            if let (Some(s), ExitCode::SUCCESS) = (&generated, code) {
                // The secret alone on stdout's last line: the receiver needs it, and it is
                // shown only this once (the API never returns it).
                println!("{s}");
                eprintln!(
                    "the webhook's signing secret is the line above; it is shown only this once"
                );
            }
            code
        }
    })
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn read_secret(path: &std::path::Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the secret from {}", path.display()))?;
    }
    Ok(text.trim().to_owned())
}

/// `steward integrations check|test`: runs here, with the file's configuration and this
/// machine's environment for its secret references.
pub async fn integrations(cmd: IntegrationsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        IntegrationsCmd::Check(a) => {
            let config = IntegrationsConfig::load(&a.file)?;
            Integrations::build(&config)?;
            for (kind, name) in config.names() {
                println!("{kind}.{name}");
            }
            eprintln!(
                "{}: valid; every secret reference resolved",
                a.file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        IntegrationsCmd::Test(a) => {
            let config = IntegrationsConfig::load(&a.file.file)?;
            let integrations = Integrations::build(&config)?;
            let Some(target) = integrations.named(&a.name) else {
                let names: Vec<String> = config
                    .names()
                    .iter()
                    .map(|(k, n)| format!("{k}.{n}"))
                    .collect();
                anyhow::bail!(
                    "no integration named {} in {} (it has: {})",
                    a.name,
                    a.file.file.display(),
                    names.join(", ")
                );
            };
            let delivery = steward_integrations::test_delivery(target.id(), chrono::Utc::now());
            let outcome = target.deliver(&delivery).await;
            match outcome.code {
                Some(c) => println!("{}: the receiver answered {c}", target.id()),
                None => println!("{}: no answer", target.id()),
            }
            if let Some(e) = &outcome.error {
                eprintln!("test delivery failed: {e}");
            }
            Ok(if outcome.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
