//! Running syncdeck as a service: the daemon's HTTP endpoint with
//! `/metrics` (Prometheus), `/healthz` (the process answers and its async
//! runtime is not stuck) and `/readyz` (the state store answers).
//!
//! Depends on `run` (events), `state` and `engine` (only to subscribe to
//! its events and read its state store): the engine knows nothing of it.

mod counted;
pub mod metrics;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::redact;
use crate::engine::Engine;
use crate::state::StateStore;
pub use metrics::Metrics;

/// How often the heartbeat ticks.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A heartbeat older than this means the runtime is starved or stuck.
const STUCK_AFTER: Duration = Duration::from_secs(15);
/// How long `/readyz` waits for the state store.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "cannot serve metrics on {address}: {source}; set --metrics-addr (or [engine] metrics_addr) to a free HOST:PORT"
    )]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// What the endpoint answers from.
struct Shared {
    metrics: Arc<Metrics>,
    state: Arc<dyn StateStore>,
    started: tokio::time::Instant,
    /// Milliseconds after `started` of the last heartbeat.
    heartbeat: AtomicU64,
}

impl Shared {
    fn since_heartbeat(&self) -> Duration {
        let now = self.started.elapsed();
        now.saturating_sub(Duration::from_millis(
            self.heartbeat.load(Ordering::Relaxed),
        ))
    }
}

/// A bound, not yet serving, endpoint.
pub struct Endpoint {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Endpoint {
    /// Binds `address` (`HOST:PORT`) and starts counting `engine`'s events
    /// into `metrics` (give the engine `metrics.count_errors(store)` as its
    /// state store to count state-store errors). Call before the first run
    /// starts, so no run is missed.
    pub async fn bind(
        address: &str,
        metrics: Arc<Metrics>,
        engine: &Arc<Engine>,
        stop: &CancellationToken,
    ) -> Result<Self, ServiceError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServiceError::Bind {
                address: address.to_string(),
                source,
            })?;
        let state = Arc::clone(engine.state());
        tokio::spawn(metrics::follow(
            Arc::clone(&metrics),
            engine.subscribe(),
            Arc::clone(&state),
            stop.clone(),
        ));
        let shared = Arc::new(Shared {
            metrics,
            state,
            started: tokio::time::Instant::now(),
            heartbeat: AtomicU64::new(0),
        });
        Ok(Self { listener, shared })
    }

    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `stop`.
    pub async fn serve(self, stop: CancellationToken) {
        let heartbeat = {
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(HEARTBEAT_EVERY);
                loop {
                    interval.tick().await;
                    let elapsed = shared.started.elapsed().as_millis();
                    shared.heartbeat.store(
                        u64::try_from(elapsed).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                }
            })
        };
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint: cannot accept a connection");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(answer(&shared, &request).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(%error, "metrics endpoint: connection ended");
                }
            });
        }
        heartbeat.abort();
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

const PLAIN: &str = "text/plain; charset=utf-8";

async fn answer(shared: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET and HEAD\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            // Prometheus asks for OpenMetrics when it can read it.
            let openmetrics = request
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("application/openmetrics-text"));
            let (encoded, content_type) = if openmetrics {
                (
                    shared.metrics.encode_openmetrics(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            } else {
                (
                    shared.metrics.encode_prometheus(),
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                )
            };
            match encoded {
                Ok(body) => text(StatusCode::OK, content_type, body),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    PLAIN,
                    "cannot encode the metrics\n".into(),
                ),
            }
        }
        "/healthz" => {
            let since = shared.since_heartbeat();
            if since > STUCK_AFTER {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    format!(
                        "stuck: the runtime's heartbeat is {}s old\n",
                        since.as_secs()
                    ),
                )
            } else {
                text(StatusCode::OK, PLAIN, "ok\n".into())
            }
        }
        "/readyz" => match tokio::time::timeout(READY_TIMEOUT, shared.state.runs(None, 1)).await {
            Ok(Ok(_)) => text(StatusCode::OK, PLAIN, "ready\n".into()),
            Ok(Err(error)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                format!(
                    "not ready: the state store does not answer: {}\n",
                    redact(&error.to_string())
                ),
            ),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                format!(
                    "not ready: the state store did not answer within {}s\n",
                    READY_TIMEOUT.as_secs()
                ),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found; try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}
