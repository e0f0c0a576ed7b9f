//! The accept loop: each connection served by hyper's HTTP/1 with a timer,
//! so a client that opens a connection and sends no whole request head
//! within `HEADER_READ_TIMEOUT` is dropped (`axum::serve` sets no timer, and
//! its idle connections were held forever). A stop finishes the requests
//! under way, then closes each connection (the caller bounds the wait).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// How long a connection may take to send a request's head (from its
/// opening, or from the end of its last answer).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Tests shorten the header timeout with this variable (milliseconds); a
/// release build ignores it, as it does `AIRLOCK_TEST_NOW`.
pub const TEST_HEADER_TIMEOUT_VAR: &str = "AIRLOCK_TEST_HEADER_TIMEOUT_MS";

fn header_read_timeout() -> Duration {
    if cfg!(debug_assertions)
        && let Some(ms) = std::env::var(TEST_HEADER_TIMEOUT_VAR)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_millis(ms);
    }
    HEADER_READ_TIMEOUT
}

/// Serves `app` on `listener` until `stop` completes, then waits for the
/// connections to finish their requests.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout());
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before it
                // was taken: not the server's end; wait a little (a flood
                // would otherwise spin this loop) and go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection's error (a reset, a timed-out head, a malformed
            // request hyper answered itself) ends that connection only.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
