//! `steward serve`, and the in-process server the demo starts: the API router over the
//! embedded backend, with graceful shutdown.
//!
//! Invariants: principals are seeded into the registry before the first request is accepted;
//! the token table holds hashes only; no token value is ever printed or logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use steward_core::webhooks::RetrySchedule;
use steward_integrations::{Deliverer, Integrations};

use anyhow::Context;
use steward_api::{
    router, AppState, Authenticator, Authenticators, BearerTokens, OidcSettings, OidcVerifier,
};
use steward_core::Policy;
use steward_local::{load_principals, Embedded, PrincipalEntry};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cli::{OidcArgs, ServeArgs};
use crate::principals_file;

/// A server running on a tokio task.
pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// The base URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the server task panicked")??;
        Ok(())
    }
}

/// The bearer-token table of a principals file.
pub fn tokens(entries: &[PrincipalEntry]) -> BearerTokens {
    BearerTokens::new(entries.iter().map(|e| (e.id.clone(), e.token_sha256)))
}

/// Binds `addr` and serves the API over `embedded` until [`Running::stop`].
pub async fn start(
    embedded: &Embedded,
    auth: impl Authenticator + 'static,
    addr: SocketAddr,
) -> anyhow::Result<Running> {
    let deliverer = Deliverer::new(
        embedded.gov.clone(),
        RetrySchedule::default(),
        Integrations::none(),
    )?;
    start_with(embedded, auth, addr, deliverer).await
}

/// [`start`] with the inbound endpoints of `deliverer`'s integrations (vendors' signed
/// callbacks), which queue what they send back on it.
pub async fn start_with(
    embedded: &Embedded,
    auth: impl Authenticator + 'static,
    addr: SocketAddr,
    deliverer: Deliverer,
) -> anyhow::Result<Running> {
    let app = router(AppState {
        gov: embedded.gov.clone(),
        auth: Arc::new(auth),
    })
    .merge(steward_integrations::inbound::router(deliverer));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running { addr, stop, task })
}

/// The OpenID Connect verifier `--oidc-*` configure, if any; the client secret comes from
/// `STEWARD_OIDC_CLIENT_SECRET` only.
pub fn oidc_verifier(args: &OidcArgs) -> anyhow::Result<Option<OidcVerifier>> {
    let settings = OidcSettings {
        issuer: args.oidc_issuer.clone(),
        audiences: args.oidc_audience.clone(),
        algorithms: args.oidc_algorithms.clone(),
        console_client_id: args.oidc_client_id.clone(),
        console_client_secret: std::env::var("STEWARD_OIDC_CLIENT_SECRET").ok(),
        cli_client_id: args.oidc_cli_client_id.clone(),
        groups_claim: args.oidc_groups_claim.clone(),
        group_roles: args.oidc_group_role.clone(),
        provider_name: args.oidc_provider_name.clone(),
        public_url: args.public_url.clone(),
        scopes: args.oidc_scopes.clone(),
    };
    match settings.build()? {
        Some(config) => Ok(Some(OidcVerifier::new(config)?)),
        None => Ok(None),
    }
}

fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    match path {
        None => Ok(Policy::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading policy file {}", p.display()))?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

/// The principals file to load: `--principals`, or DIR/principals.toml, created with the
/// starter set on a first run.
fn principals_path(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.principals {
        return Ok(p.clone());
    }
    let path = args.data.join(principals_file::PRINCIPALS_FILE);
    if !path.exists() {
        let (principals, tokens) = principals_file::write_starter(&args.data)?;
        println!(
            "created starter principals in {} (admin, dev, tech, biz, comp, release, ops, audit)",
            principals.display()
        );
        println!(
            "their bearer tokens are in {} (readable by you only); use one with: export STEWARD_TOKEN=<token>",
            tokens.display()
        );
        tracing::info!(principals = %principals.display(), tokens = %tokens.display(), "created starter principals");
    }
    Ok(path)
}

/// Ctrl-C and SIGTERM, listened for from [`Shutdown::listen`] on.
///
/// Invariant: the handlers are installed before the server says it is listening, so a
/// supervisor (or a test) that sends SIGTERM right after readiness gets a graceful stop, not
/// the default action of the signal.
struct Shutdown {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn listen() -> anyhow::Result<Shutdown> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Shutdown {
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    /// Resolves on the first Ctrl-C or SIGTERM.
    async fn requested(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// `steward serve`
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let policy = load_policy(args.policy.as_deref())?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating data directory {}", args.data.display()))?;
    let principals = principals_path(&args)?;
    let entries = load_principals(&principals)?;
    if entries.is_empty() {
        tracing::warn!(file = %principals.display(), "the principals file lists nobody: every request will be refused");
    }
    let integrations = match &args.integrations {
        Some(path) => {
            let config = steward_integrations::IntegrationsConfig::load(path)?;
            let names: Vec<String> = config
                .names()
                .iter()
                .map(|(k, n)| format!("{k}.{n}"))
                .collect();
            tracing::info!(file = %path.display(), integrations = ?names, "integrations loaded");
            Integrations::build(&config)?
        }
        None => Integrations::none(),
    };
    // ServiceNow, when configured, gates production: attached before anything is served.
    let change_control = integrations.change_control();
    let embedded = Embedded::open_configured(
        &args.data,
        policy,
        Arc::new(steward_core::ports::SystemClock),
        |gov| match change_control {
            Some(cc) => gov.with_change_control(cc),
            None => gov,
        },
    )
    .await?;
    let changed = embedded.seed_principals(&entries).await?;
    tracing::info!(
        file = %principals.display(),
        principals = entries.len(),
        changed,
        "principals loaded"
    );
    let runner = embedded.spawn_runner(Duration::from_secs(args.runner_interval.max(1)));
    let deliverer = Deliverer::new(
        embedded.gov.clone(),
        RetrySchedule {
            first: chrono::Duration::milliseconds(args.webhook_retry_first_ms.max(1) as i64),
            ..Default::default()
        },
        integrations,
    )?;
    let delivering =
        crate::webhooks::spawn(&embedded, Duration::from_millis(500), deliverer.clone())?;
    let oidc = oidc_verifier(&args.oidc)?;
    if let Some(o) = &oidc {
        tracing::info!(issuer = %o.config.issuer, audiences = ?o.config.audiences, "OpenID Connect sign-in enabled");
    }
    let auth = Authenticators {
        tokens: Some(tokens(&entries)),
        oidc,
        iam: false,
    };
    let shutdown = Shutdown::listen()?;
    let running = start_with(&embedded, auth, args.addr, deliverer).await?;
    tracing::info!(addr = %running.addr, data = %args.data.display(), "serving the Steward API");
    // Scripts (and the tests) read the bound address from this line, e.g. with --addr 127.0.0.1:0.
    println!("steward listening on {}", running.url());
    println!("web console: {}/console/", running.url());

    shutdown.requested().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.stop().await?;
    runner.abort();
    delivering.abort();
    tracing::info!("stopped");
    Ok(())
}
