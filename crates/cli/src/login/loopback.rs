//! The loopback redirect of a native app (RFC 8252 §7.3): a listener on `127.0.0.1` and a
//! port the system picks, waiting for the browser to come back to `/callback` with the
//! authorization code.
//!
//! Invariants: only a `GET /callback` whose `state` is the one this sign-in sent yields a code;
//! a wrong or missing `state` ends the sign-in (it may be a forged redirect) and the browser is
//! told so; other paths (a browser's `/favicon.ico`) get a 404 and are otherwise ignored; the
//! browser's request is read with a size limit and a time limit.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most of a browser's request that is read (request line and headers).
const MAX_REQUEST: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener for the redirect.
pub struct Listener {
    listener: TcpListener,
    pub redirect_uri: String,
}

/// What the redirect brought back.
#[derive(Debug)]
pub enum Outcome {
    Code(String),
    /// The provider said no (`error`, `error_description`).
    Denied(String),
}

impl Listener {
    /// Binds `127.0.0.1:port`. Port 0 (any free port, RFC 8252) redirects to
    /// `http://127.0.0.1:<port>/callback`; a fixed port, for providers that compare redirect
    /// URIs exactly and accept only `localhost` for plain http (Cognito), to
    /// `http://localhost:<port>/callback`.
    pub async fn bind(port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{port} for the sign-in redirect: {e}")
        })?;
        let bound = listener.local_addr()?.port();
        let host = if port == 0 { "127.0.0.1" } else { "localhost" };
        Ok(Self {
            listener,
            redirect_uri: format!("http://{host}:{bound}/callback"),
        })
    }

    /// Waits (at most `timeout`) for the redirect carrying `state`.
    pub async fn wait(&self, state: &str, timeout: Duration) -> anyhow::Result<Outcome> {
        tokio::time::timeout(timeout, self.accept_loop(state))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no sign-in within {}s; run `steward login` again (--timeout to wait longer)",
                    timeout.as_secs()
                )
            })?
    }

    async fn accept_loop(&self, state: &str) -> anyhow::Result<Outcome> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let target = match tokio::time::timeout(READ_TIMEOUT, request_target(&mut stream)).await
            {
                Ok(Some(t)) => t,
                _ => {
                    let _ = respond(
                        &mut stream,
                        400,
                        "Bad request",
                        "This is not a sign-in redirect.",
                    )
                    .await;
                    continue;
                }
            };
            let url = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok();
            let Some(url) = url.filter(|u| u.path() == "/callback") else {
                let _ = respond(&mut stream, 404, "Not found", "Nothing here.").await;
                continue;
            };
            let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
            if params.get("state").map(String::as_str) != Some(state) {
                let _ = respond(
                    &mut stream,
                    400,
                    "Sign-in refused",
                    "This sign-in response does not belong to the sign-in steward started (wrong state). Nothing was saved.",
                )
                .await;
                anyhow::bail!(
                    "the sign-in redirect carried a wrong state; it was refused and nothing was saved"
                );
            }
            if let Some(error) = params.get("error") {
                let description = params
                    .get("error_description")
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                let _ = respond(
                    &mut stream,
                    400,
                    "Sign-in failed",
                    "The identity provider did not sign you in. See the terminal for details.",
                )
                .await;
                return Ok(Outcome::Denied(format!("{error}{description}")));
            }
            let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
                let _ = respond(
                    &mut stream,
                    400,
                    "Sign-in failed",
                    "The redirect carried no code.",
                )
                .await;
                anyhow::bail!("the sign-in redirect carried no authorization code");
            };
            let _ = respond(
                &mut stream,
                200,
                "Signed in",
                "You are signed in to Steward. You can close this tab and return to the terminal.",
            )
            .await;
            return Ok(Outcome::Code(code.clone()));
        }
    }
}

/// The request target of a `GET` (`/callback?code=...`), or `None` for anything else.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_REQUEST {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = std::str::from_utf8(&buf).ok()?;
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(version))
            if target.starts_with('/') && version.starts_with("HTTP/1") =>
        {
            Some(target.to_owned())
        }
        _ => None,
    }
}

/// Answers the browser with a small HTML page and closes the connection.
async fn respond(
    stream: &mut TcpStream,
    status: u16,
    title: &str,
    text: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    // Fixed texts only: nothing from the request is echoed into the page.
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Steward: {title}</title></head>\
         <body style=\"font-family: sans-serif; margin: 3em\"><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn any_port_redirects_to_127_0_0_1_and_a_fixed_port_to_localhost() {
        let any = Listener::bind(0).await.unwrap();
        assert!(any.redirect_uri.starts_with("http://127.0.0.1:"));
        assert!(!any.redirect_uri.starts_with("http://127.0.0.1:0/"));
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let fixed = Listener::bind(free).await.unwrap();
        assert_eq!(
            fixed.redirect_uri,
            format!("http://localhost:{free}/callback")
        );
    }
}
