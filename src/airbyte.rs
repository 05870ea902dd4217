//! Airbyte jobs (`type = "airbyte"`): trigger a sync of a connection
//! through the Airbyte API, then watch the job until it ends, the timeout
//! passes (the remote job is cancelled) or the run is cancelled (so is the
//! remote job, and syncdeck waits for Airbyte to confirm). With
//! `asynchronous = true` the run ends `submitted` at once and the engine
//! keeps watching the job, recording its final status on the same run.
//!
//! Endpoints used: `POST /applications/token`, `POST /jobs`,
//! `GET /jobs/{id}`, `DELETE /jobs/{id}`.
//!
//! Depends on `task` (the contract: a body and a `RemoteJob` the engine
//! keeps watching), `config` and `run`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::config::AirbyteProperties;
use crate::run::RunStatus;
use crate::task::{PlanRequest, RemoteJob, RunContext, TaskBody, TaskOutcome, TaskPlan};

/// How long a cancel waits for Airbyte to confirm it.
const CANCEL_CONFIRM: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AirbyteError {
    /// Airbyte could not be reached (network, timeout, TLS).
    #[error("{0}")]
    Unreachable(String),
    /// Airbyte refused the client credentials.
    #[error(
        "Airbyte at {0} refused the client credentials ({1}); check client_id and client_secret"
    )]
    Refused(String, reqwest::StatusCode),
    /// Airbyte answered with an error status or something unreadable.
    #[error("{0}")]
    Answer(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    job_id: i64,
    status: String,
    #[serde(default)]
    bytes_synced: Option<u64>,
    #[serde(default)]
    rows_synced: Option<u64>,
    /// Not in every Airbyte version; shown when present.
    #[serde(default)]
    failure_reason: Option<String>,
}

/// A job's state, as a run status: `None` while it still runs.
fn finished(status: &str) -> Option<RunStatus> {
    match status {
        "succeeded" => Some(RunStatus::Succeeded),
        "failed" | "incomplete" => Some(RunStatus::Failed),
        "cancelled" => Some(RunStatus::Cancelled),
        _ => None,
    }
}

/// A logged-in client for one Airbyte API.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(properties: &AirbyteProperties) -> Result<Self, AirbyteError> {
        let base = properties.api_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| {
                AirbyteError::Unreachable(format!("cannot build an HTTP client: {error}"))
            })?;
        let response = http
            .post(format!("{base}/applications/token"))
            .json(&json!({
                "client_id": properties.client_id.expose(),
                "client_secret": properties.client_secret.expose(),
                "grant-type": "client_credentials",
            }))
            .send()
            .await
            .map_err(|error| {
                AirbyteError::Unreachable(format!(
                    "cannot reach Airbyte at {base}: {}",
                    without_url(&error)
                ))
            })?;
        if !response.status().is_success() {
            return Err(AirbyteError::Refused(base, response.status()));
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let token: Token = response.json().await.map_err(|error| {
            AirbyteError::Answer(format!("unexpected token answer from {base}: {error}"))
        })?;
        crate::config::register_secret(&token.access_token);
        Ok(Self {
            http,
            base,
            token: token.access_token,
        })
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Job, AirbyteError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|error| {
                AirbyteError::Unreachable(format!("{what}: {}", without_url(&error)))
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(AirbyteError::Answer(format!(
                "{what}: Airbyte answered {status}: {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        response
            .json()
            .await
            .map_err(|error| AirbyteError::Answer(format!("{what}: unexpected answer: {error}")))
    }

    async fn submit(&self, connection_id: &str) -> Result<Job, AirbyteError> {
        let request = self
            .http
            .post(format!("{}/jobs", self.base))
            .json(&json!({ "connectionId": connection_id, "jobType": "sync" }));
        self.call(request, "starting the sync").await
    }

    async fn job(&self, job_id: i64) -> Result<Job, AirbyteError> {
        self.call(
            self.http.get(format!("{}/jobs/{job_id}", self.base)),
            &format!("reading job {job_id}"),
        )
        .await
    }

    async fn cancel(&self, job_id: i64) -> Result<Job, AirbyteError> {
        self.call(
            self.http.delete(format!("{}/jobs/{job_id}", self.base)),
            &format!("cancelling job {job_id}"),
        )
        .await
    }
}

/// reqwest's errors quote the URL; the host is named by the caller.
fn without_url(error: &reqwest::Error) -> String {
    let mut error_text = error.to_string();
    if let Some(url) = error.url() {
        error_text = error_text
            .replace(url.as_str(), "")
            .replace("()", "")
            .trim()
            .to_string();
    }
    error_text
}

/// An Airbyte task: submits a sync of its connection and watches the job.
pub(crate) struct AirbyteBody(pub(crate) Arc<AirbyteProperties>);

#[async_trait::async_trait]
impl TaskBody for AirbyteBody {
    async fn run(&self, context: &RunContext) -> TaskOutcome {
        match run_inner(&self.0, context).await {
            Ok(outcome) => outcome,
            Err(error) => TaskOutcome::failed(error.to_string()),
        }
    }

    async fn plan(&self, request: &PlanRequest) -> Result<TaskPlan, String> {
        let properties = &self.0;
        let line = format!(
            "{}: would start a sync of Airbyte connection {} at {} and {}",
            request.task_id,
            properties.connection_id,
            properties.api_url,
            if properties.asynchronous {
                "return at once (asynchronous)"
            } else {
                "wait for the job to end"
            }
        );
        let json = json!({
            "task_id": request.task_id,
            "connection_id": properties.connection_id,
            "api_url": properties.api_url,
            "asynchronous": properties.asynchronous,
        });
        Ok(TaskPlan {
            lines: vec![line],
            json,
        })
    }

    async fn resume(&self, remote_job_id: i64) -> Option<Result<Arc<dyn RemoteJob>, String>> {
        Some(match Api::login(&self.0).await {
            Ok(api) => Ok(Arc::new(Watch {
                api,
                job_id: remote_job_id,
                properties: (*self.0).clone(),
            })),
            Err(error) => Err(error.to_string()),
        })
    }
}

async fn run_inner(
    properties: &AirbyteProperties,
    context: &RunContext,
) -> Result<TaskOutcome, AirbyteError> {
    let api = Api::login(properties).await?;
    let connection_id =
        crate::config::template::render(&properties.connection_id, &context.templates);
    let job = api.submit(&connection_id).await?;
    context.update_counters(|counters| counters.remote_job_id = Some(job.job_id));
    tracing::info!(job_id = job.job_id, connection_id = %connection_id, "Airbyte sync submitted");
    if properties.asynchronous {
        let watch = Watch {
            api,
            job_id: job.job_id,
            properties: properties.clone(),
        };
        return Ok(TaskOutcome::new(
            RunStatus::Submitted,
            None,
            Some(format!("Airbyte job {} submitted; watching it", job.job_id)),
        )
        .with_follow_up(Arc::new(watch)));
    }
    let watch = Watch {
        api,
        job_id: job.job_id,
        properties: properties.clone(),
    };
    Ok(watch.poll_until_done(context).await)
}

/// Watches one Airbyte job to its end.
pub(crate) struct Watch {
    api: Api,
    job_id: i64,
    properties: AirbyteProperties,
}

#[async_trait::async_trait]
impl RemoteJob for Watch {
    async fn until_done(&self, context: &RunContext) -> TaskOutcome {
        self.poll_until_done(context).await
    }
}

impl Watch {
    fn poll_interval(&self) -> Duration {
        Duration::try_from_secs_f64(self.properties.wait_seconds.max(0.05))
            .unwrap_or(Duration::from_secs(3))
    }

    /// Polls every `wait_seconds` until the job ends, the timeout passes
    /// (then cancels the job) or the run is cancelled (ditto).
    async fn poll_until_done(&self, context: &RunContext) -> TaskOutcome {
        let interval = self.poll_interval();
        let deadline = tokio::time::Instant::now() + self.properties.timeout;
        loop {
            let job = match self.api.job(self.job_id).await {
                Ok(job) => job,
                Err(error) => {
                    tracing::warn!(%error, "could not read the job's state; trying again");
                    tokio::select! {
                        _ = context.cancel.cancelled() => return self.cancel_remote("cancelled by the operator").await,
                        _ = tokio::time::sleep(interval) => continue,
                    }
                }
            };
            context.update_counters(|counters| {
                counters.rows_upserted = job.rows_synced.unwrap_or(counters.rows_upserted);
                counters.bytes_done = job.bytes_synced.unwrap_or(counters.bytes_done);
            });
            if let Some(status) = finished(&job.status) {
                let error = match status {
                    RunStatus::Succeeded => None,
                    _ => Some(format!(
                        "Airbyte job {} {}{}",
                        job.job_id,
                        job.status,
                        job.failure_reason
                            .as_deref()
                            .map(|reason| format!(": {reason}"))
                            .unwrap_or_default()
                    )),
                };
                return TaskOutcome::new(status, error, None);
            }
            if tokio::time::Instant::now() >= deadline {
                let timeout = humantime::format_duration(self.properties.timeout);
                let mut outcome = self
                    .cancel_remote(&format!("timed out after {timeout}"))
                    .await;
                outcome.status = RunStatus::Failed;
                return outcome;
            }
            tokio::select! {
                _ = context.cancel.cancelled() => return self.cancel_remote("cancelled by the operator").await,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Cancels the remote job and waits for Airbyte to confirm it.
    async fn cancel_remote(&self, why: &str) -> TaskOutcome {
        let interval = self.poll_interval();
        if let Err(error) = self.api.cancel(self.job_id).await {
            return TaskOutcome::failed(format!(
                "{why}; cancelling Airbyte job {} failed: {error}",
                self.job_id
            ));
        }
        let deadline = tokio::time::Instant::now() + CANCEL_CONFIRM;
        while tokio::time::Instant::now() < deadline {
            if let Ok(job) = self.api.job(self.job_id).await
                && finished(&job.status).is_some()
            {
                return TaskOutcome::new(
                    RunStatus::Cancelled,
                    Some(format!("{why}; Airbyte job {} {}", self.job_id, job.status)),
                    None,
                );
            }
            tokio::time::sleep(interval).await;
        }
        TaskOutcome::failed(format!(
            "{why}; Airbyte did not confirm the cancel of job {} in time",
            self.job_id
        ))
    }
}
