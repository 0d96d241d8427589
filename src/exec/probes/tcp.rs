//! `tcp`: a connection, and with `send`/`expect` a short exchange: the
//! bytes of `send` written once connected, then the answer read until it
//! contains `expect`.

use std::time::Duration;

use std::future::Future;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::excerpt;

/// Answers longer than this without `expect` in them are a wrong answer,
/// not a reason to keep reading.
const MAX_ANSWER: usize = 64 * 1024;

/// Passes when the connection opens and, with `expect`, the server's answer
/// contains it before `timeout` (which bounds `connect` too). The error is
/// what an operator reads.
pub async fn probe<S: AsyncRead + AsyncWrite + Unpin>(
    connect: impl Future<Output = Result<S, String>>,
    send: Option<&str>,
    expect: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let mut connected = false;
    let mut received = Vec::new();
    let exchange = exchange(connect, send, expect, &mut connected, &mut received);
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => {
            let within = crate::model::Duration(timeout);
            Err(match expect {
                Some(expect) if connected => format!(
                    "connected, but `{}` was not received within {within}; {}",
                    excerpt(expect.as_bytes()),
                    what_came(&received)
                ),
                _ => format!("no answer within {within}"),
            })
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    connect: impl Future<Output = Result<S, String>>,
    send: Option<&str>,
    expect: Option<&str>,
    connected: &mut bool,
    received: &mut Vec<u8>,
) -> Result<(), String> {
    let mut stream = connect.await?;
    *connected = true;
    if let Some(send) = send {
        stream
            .write_all(send.as_bytes())
            .await
            .map_err(|e| format!("connected, but sending failed: {e}"))?;
    }
    let Some(expect) = expect else {
        return Ok(());
    };
    let mut buf = [0u8; 4096];
    loop {
        if contains(received, expect.as_bytes()) {
            return Ok(());
        }
        if received.len() >= MAX_ANSWER {
            return Err(format!(
                "`{}` not in the first {} KiB received; {}",
                excerpt(expect.as_bytes()),
                MAX_ANSWER / 1024,
                what_came(received)
            ));
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer failed: {e}; {}", what_came(received)))?;
        if n == 0 {
            return Err(format!(
                "connection closed before `{}` was received; {}",
                excerpt(expect.as_bytes()),
                what_came(received)
            ));
        }
        received.extend_from_slice(&buf[..n]);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn what_came(received: &[u8]) -> String {
    if received.is_empty() {
        "received nothing".into()
    } else {
        format!("received `{}`", excerpt(received))
    }
}
