//! Backups spread over workers through NATS JetStream (docs/decisions/0013-workers.md).
//!
//! A run's resources become tasks on a work-queue stream (`<queue>-tasks`); every `cairn
//! worker` pulls from one durable consumer, so each task goes to one worker at a time. A
//! worker holding a task sends in-progress acknowledgements as heartbeats, publishes the
//! resource's report on `<queue>.results.<run>` once the restore point and its catalog
//! commit are durable, and only then acknowledges the task. A worker that dies stops
//! heartbeating: after the consumer's ack wait the task goes to another worker, which
//! resumes from what the shared catalog holds. The tenant's SharePoint/OneDrive budget is
//! shared through a KV bucket ([`budget`]); a mailbox's limits need no sharing, since a
//! task is one resource and one resource is on one worker at a time.

pub mod budget;

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer, stream};
use cairn_backup::ResourceReport;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How long a task may go without a heartbeat before it is given to another worker, unless
/// the URL says otherwise (`ack-wait=SECONDS`).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(60);
/// Deliveries of one task before the run gives it up (each one a worker that took it and
/// stopped heartbeating).
pub const MAX_DELIVER: i64 = 5;
/// The durable consumer every worker pulls from.
const CONSUMER: &str = "workers";

/// `nats://host:4222?queue=NAME&ack-wait=SECONDS`, parsed: the server to connect to, the
/// queue's name (streams, subjects and buckets are named after it, so that several
/// installations share one server) and the ack wait of a new consumer.
#[derive(Clone)]
pub struct QueueUrl {
    server: String,
    pub queue: String,
    pub ack_wait: Duration,
}

impl std::fmt::Debug for QueueUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.shown())
    }
}

impl QueueUrl {
    pub fn parse(s: &str) -> anyhow::Result<QueueUrl> {
        let mut u = url::Url::parse(s).map_err(|e| {
            anyhow::anyhow!(
                "'{}' is no NATS URL ({e}): give nats://host:4222, optionally with ?queue=NAME",
                redact(s)
            )
        })?;
        if !matches!(u.scheme(), "nats" | "tls") {
            bail!(
                "'{}' is no NATS URL: it starts with nats:// (or tls://)",
                redact(s)
            );
        }
        let mut queue = "cairn".to_string();
        let mut ack_wait = DEFAULT_ACK_WAIT;
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "queue" => queue = v.into_owned(),
                "ack-wait" => {
                    let secs: u64 = v.parse().ok().filter(|&n| n > 0).with_context(|| {
                        format!("ack-wait={v} in the NATS URL: give a number of seconds")
                    })?;
                    ack_wait = Duration::from_secs(secs);
                }
                other => bail!(
                    "unknown parameter '{other}' in the NATS URL {}: known are queue and ack-wait",
                    redact(s)
                ),
            }
        }
        if queue.is_empty()
            || !queue
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("queue '{queue}' in the NATS URL: use letters, digits, '-' and '_' only");
        }
        u.set_query(None);
        Ok(QueueUrl {
            server: u.to_string(),
            queue,
            ack_wait,
        })
    }

    /// The server's URL for messages: a password or token never shows.
    pub fn shown(&self) -> String {
        redact(&self.server)
    }

    fn tasks_stream(&self) -> String {
        format!("{}-tasks", self.queue)
    }
    fn results_stream(&self) -> String {
        format!("{}-results", self.queue)
    }
    fn tasks_subject(&self) -> String {
        format!("{}.tasks", self.queue)
    }
    fn results_subject(&self, run: &str) -> String {
        format!("{}.results.{run}", self.queue)
    }
    fn events_subject(&self, run: &str) -> String {
        format!("{}.events.{run}", self.queue)
    }
    fn budgets_bucket(&self) -> String {
        format!("{}-budgets", self.queue)
    }
}

/// A URL with what sits before `@` (a user's password, a token) replaced.
fn redact(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(i), Some(at)) if at > i => format!("{}***{}", &s[..i + 3], &s[at..]),
        _ => s.to_string(),
    }
}

/// One resource of a run, as a worker needs it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Task {
    pub run: String,
    /// Its number in the run (0…), unique per run.
    pub index: u32,
    /// The tenant's name in the configuration file the workers share.
    pub tenant: String,
    /// `user`, `group` or `site`.
    pub kind: String,
    /// Graph id.
    pub id: String,
    /// What people call it (the restore points' label).
    pub name: String,
    /// The services to back up (`mail`, `onedrive`, …).
    pub services: Vec<String>,
    pub file_versions: bool,
    pub full_fidelity: bool,
}

/// What a worker did with a task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskResult {
    pub run: String,
    pub index: u32,
    /// `host:pid` of the worker.
    pub worker: String,
    /// How often the task had been handed out, this time included.
    pub delivered: i64,
    /// The worker's Graph request counter before and after the task, and its throttled
    /// responses (a run's totals come from them per worker).
    pub requests_before: u64,
    pub requests_after: u64,
    pub throttled_before: u64,
    pub throttled_after: u64,
    pub report: ResourceReport,
}

/// Something a worker says while it works on a task (for progress; not persisted).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    pub index: u32,
    pub worker: String,
    /// `started`.
    pub what: String,
}

/// The queue on a NATS server: its streams, made on first use.
pub struct Queue {
    url: QueueUrl,
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Queue {
    /// Connects and makes the streams if they do not exist yet.
    pub async fn connect(url: &str) -> anyhow::Result<Queue> {
        let url = QueueUrl::parse(url)?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("cairn")
            .connect(url.server.as_str())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the NATS server at {}: {e} (is it running, with JetStream on? Without --nats / nats = … backups run in this process)",
                    url.shown()
                )
            })?;
        let js = jetstream::new(client.clone());
        let q = Queue { url, client, js };
        q.js.get_or_create_stream(stream::Config {
            name: q.url.tasks_stream(),
            subjects: vec![q.url.tasks_subject()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            description: Some("Cairn: backup tasks, one per resource".into()),
            ..Default::default()
        })
        .await
        .with_context(|| {
            format!(
                "the task stream on {} (is JetStream enabled?)",
                q.url.shown()
            )
        })?;
        q.js.get_or_create_stream(stream::Config {
            name: q.url.results_stream(),
            subjects: vec![format!("{}.results.>", q.url.queue)],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            description: Some("Cairn: what workers did with backup tasks".into()),
            ..Default::default()
        })
        .await
        .with_context(|| format!("the result stream on {}", q.url.shown()))?;
        Ok(q)
    }

    pub fn url(&self) -> &QueueUrl {
        &self.url
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The tenant's SharePoint/OneDrive budget as every worker shares it.
    pub async fn files_budget(
        &self,
        tenant_id: &str,
        ru_per_min: u32,
    ) -> anyhow::Result<Arc<budget::KvBudget>> {
        budget::KvBudget::open(
            &self.js,
            &self.url.budgets_bucket(),
            tenant_id,
            ru_per_min,
            budget::WINDOW,
        )
        .await
        .map(Arc::new)
    }

    /// Puts a run's tasks on the queue and gathers what the workers did, calling `on`
    /// with each worker's events and results as they come. A task handed out
    /// [`MAX_DELIVER`] times without a result is given up and reported failed.
    pub async fn run(
        &self,
        tasks: &[Task],
        on: &mut (dyn FnMut(Update<'_>) + Send),
    ) -> anyhow::Result<Vec<TaskResult>> {
        let Some(run) = tasks.first().map(|t| t.run.clone()) else {
            return Ok(Vec::new());
        };
        // Listen before publishing, so that nothing is missed.
        let mut events = self.client.subscribe(self.url.events_subject(&run)).await?;
        let mut advisories = self
            .client
            .subscribe(format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{CONSUMER}",
                self.url.tasks_stream()
            ))
            .await?;
        let results_stream = self.js.get_stream(self.url.results_stream()).await?;
        let mut results = results_stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.url.results_subject(&run),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await?
            .messages()
            .await?;
        let mut by_seq: HashMap<u64, u32> = HashMap::new();
        for t in tasks {
            let ack = self
                .js
                .publish(self.url.tasks_subject(), serde_json::to_vec(t)?.into())
                .await?
                .await
                .with_context(|| format!("queueing the task of {}", t.name))?;
            by_seq.insert(ack.sequence, t.index);
        }
        let mut done: BTreeMap<u32, TaskResult> = BTreeMap::new();
        // No worker has said anything a minute after the run was queued: say so, once
        // (a worker busy with one long resource says nothing meanwhile, so only the start
        // tells).
        let mut heard = false;
        let mut quiet = tokio::time::interval(Duration::from_secs(60));
        quiet.tick().await;
        while done.len() < tasks.len() {
            tokio::select! {
                _ = quiet.tick() => {
                    if !heard {
                        tracing::warn!(
                            "no worker has taken a task of run {run} in a minute: is a `cairn worker` running with the queue '{}' of {}?",
                            self.url.queue,
                            self.url.shown()
                        );
                        heard = true;
                    }
                }
                m = results.next() => {
                    let m = match m {
                        Some(m) => m?,
                        None => bail!("the result stream of {} ended", self.url.shown()),
                    };
                    let r: TaskResult = match serde_json::from_slice(&m.payload) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!("a result of run {run} could not be read: {e}");
                            continue;
                        }
                    };
                    heard = true;
                    if r.run == run && !done.contains_key(&r.index) {
                        on(Update::Finished(&r));
                        done.insert(r.index, r);
                    }
                }
                Some(m) = events.next() => {
                    heard = true;
                    if let Ok(e) = serde_json::from_slice::<Event>(&m.payload)
                        && let Some(t) = tasks.iter().find(|t| t.index == e.index)
                    {
                        on(Update::Event(t, &e));
                    }
                }
                Some(m) = advisories.next() => {
                    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
                    let seq = v["stream_seq"].as_u64().unwrap_or(0);
                    if let Some(&index) = by_seq.get(&seq)
                        && !done.contains_key(&index)
                        && let Some(t) = tasks.iter().find(|t| t.index == index)
                    {
                        let tasks_stream = self.js.get_stream(self.url.tasks_stream()).await?;
                        let _ = tasks_stream.delete_message(seq).await;
                        let r = TaskResult {
                            run: run.clone(),
                            index,
                            worker: String::new(),
                            delivered: MAX_DELIVER,
                            requests_before: 0,
                            requests_after: 0,
                            throttled_before: 0,
                            throttled_after: 0,
                            report: ResourceReport {
                                resource: t.name.clone(),
                                kind: t.kind.clone(),
                                error: Some(format!(
                                    "given up after {MAX_DELIVER} workers took it and stopped without a result (see the workers' logs); the next run continues from what they kept"
                                )),
                                transient: true,
                                ..ResourceReport::default()
                            },
                        };
                        on(Update::Finished(&r));
                        done.insert(index, r);
                    }
                }
            }
        }
        Ok(done.into_values().collect())
    }

    /// The workers' side: the durable consumer every worker pulls from.
    pub async fn tasks(&self) -> anyhow::Result<Tasks> {
        let stream = self.js.get_stream(self.url.tasks_stream()).await?;
        let mut consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    description: Some("Cairn workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.url.ack_wait,
                    max_deliver: MAX_DELIVER,
                    filter_subject: self.url.tasks_subject(),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("the workers' consumer on {}", self.url.shown()))?;
        // The consumer may have been made by another worker with another ack wait.
        let ack_wait = consumer.info().await?.config.ack_wait;
        Ok(Tasks {
            consumer,
            ack_wait,
            worker: worker_name(),
        })
    }

    /// Publishes a result (idempotent per task: the message id is the run and index) and
    /// waits until the server has stored it.
    pub async fn publish_result(&self, r: &TaskResult) -> anyhow::Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{}.{}", r.run, r.index).as_str());
        self.js
            .publish_with_headers(
                self.url.results_subject(&r.run),
                headers,
                serde_json::to_vec(r)?.into(),
            )
            .await?
            .await
            .with_context(|| format!("storing the result of {}", r.report.resource))?;
        Ok(())
    }

    /// Tells the run's dispatcher what a worker is doing (best effort).
    pub async fn event(&self, task: &Task, worker: &str, what: &str) {
        let e = Event {
            index: task.index,
            worker: worker.to_string(),
            what: what.to_string(),
        };
        if let Ok(body) = serde_json::to_vec(&e) {
            let _ = self
                .client
                .publish(self.url.events_subject(&task.run), body.into())
                .await;
        }
    }
}

/// What [`Queue::run`] reports while it waits.
pub enum Update<'a> {
    Event(&'a Task, &'a Event),
    Finished(&'a TaskResult),
}

/// `host:pid`.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}:{}", std::process::id())
}

/// The workers' view of the queue.
pub struct Tasks {
    consumer: consumer::PullConsumer,
    ack_wait: Duration,
    worker: String,
}

impl Tasks {
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The next task, waiting up to `wait` for one. A task that cannot be read is
    /// terminated (it would never become readable) and skipped.
    pub async fn next(&self, wait: Duration) -> anyhow::Result<Option<Delivery>> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await?;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("receiving a task: {e}"))?;
            let delivered = m.info().map(|i| i.delivered).unwrap_or(1);
            match serde_json::from_slice::<Task>(&m.payload) {
                Ok(task) => {
                    return Ok(Some(Delivery {
                        task,
                        delivered,
                        msg: Arc::new(m),
                        ack_wait: self.ack_wait,
                    }));
                }
                Err(e) => {
                    tracing::error!(
                        "a task on the queue is no task of this version ({e}): dropped"
                    );
                    let _ = m.ack_with(jetstream::AckKind::Term).await;
                }
            }
        }
        Ok(None)
    }
}

/// A task held by this worker.
pub struct Delivery {
    pub task: Task,
    pub delivered: i64,
    msg: Arc<jetstream::Message>,
    ack_wait: Duration,
}

impl Delivery {
    /// Sends in-progress acknowledgements until the returned guard is dropped: the task
    /// stays with this worker while it lives.
    pub fn heartbeat(&self) -> Heartbeat {
        let msg = self.msg.clone();
        let every = (self.ack_wait / 4).max(Duration::from_millis(250));
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = msg.ack_with(jetstream::AckKind::Progress).await {
                    tracing::warn!("heartbeat of a task failed: {e}");
                }
            }
        }))
    }

    /// The result is stored; the task leaves the queue. (Called only once the restore
    /// point and its catalog commit are durable.)
    pub async fn finish(self, queue: &Queue, result: &TaskResult) -> anyhow::Result<()> {
        queue.publish_result(result).await?;
        self.msg.double_ack().await.map_err(|e| {
            anyhow::anyhow!("acknowledging the task of {}: {e}", result.report.resource)
        })
    }
}

/// Stops the heartbeat when dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A new run id.
pub fn run_id() -> String {
    let b: [u8; 8] = rand::random();
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_queue_and_hide_tokens() {
        let u = QueueUrl::parse("nats://127.0.0.1:4222?queue=t1&ack-wait=3").unwrap();
        assert_eq!(u.queue, "t1");
        assert_eq!(u.ack_wait, Duration::from_secs(3));
        assert_eq!(u.tasks_stream(), "t1-tasks");
        assert_eq!(u.results_subject("ab"), "t1.results.ab");
        let d = QueueUrl::parse("nats://s3cret@mq:4222").unwrap();
        assert_eq!(d.queue, "cairn");
        assert_eq!(d.ack_wait, DEFAULT_ACK_WAIT);
        assert!(!d.shown().contains("s3cret"), "{}", d.shown());
        assert!(!format!("{d:?}").contains("s3cret"));
        let e = QueueUrl::parse("http://s3cret@x").unwrap_err().to_string();
        assert!(!e.contains("s3cret") && e.contains("nats://"), "{e}");
        assert!(QueueUrl::parse("nats://x?queue=a.b").is_err());
        assert!(QueueUrl::parse("nats://x?ack-wait=0").is_err());
        assert!(QueueUrl::parse("nats://x?other=1").is_err());
    }
}
