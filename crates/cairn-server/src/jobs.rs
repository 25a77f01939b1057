//! Backup jobs: what to back up, when, how long to keep it — and their runs.
//!
//! A job comes from the configuration file (`[jobs.NAME]`, changed by editing the file) or
//! from the API (kept in the server's tables). A run backs up the job's scope through
//! `cairn_app::backup` (the same code as `cairn backup`), retries resources that failed for
//! a transient reason with backoff, records every resource's outcome (detection's findings
//! on a suspect restore point included), then applies the job's retention: restore points
//! (`keep-daily`, …), then items (`keep-items`). Never two runs of one job at once. A run
//! the server missed while it was down runs once at start-up, not once per missed slot.
//!
//! A job with `verify` also has restore drills (`cairn_app::maintenance::drill`, the same
//! code as `cairn verify`): after each succeeded run, or on `verify-schedule`, a sample
//! of the latest restore point of each of its resources is read back and compared with the
//! catalog. A drill is a run of kind `drill` in the same history, in the job's slot.

use crate::store::{Store, now, time};
use cairn_app::UserError;
use cairn_app::backup::{BackupProgress, BackupRequest, Scope};
use cairn_backup::{JobReport, ResourceReport};
use cairn_config::JobEntry;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// When a job runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// A five-field cron expression in a time zone.
    Cron {
        cron: Box<croner::Cron>,
        tz: chrono_tz::Tz,
    },
    /// Every so often, counted from the previous slot.
    Every(chrono::Duration),
}

impl Schedule {
    /// The schedule of `[jobs.NAME]`: `schedule` (cron, with `timezone`) or `every`.
    pub fn of(name: &str, spec: &JobEntry) -> Result<Schedule, UserError> {
        match (&spec.schedule, &spec.every) {
            (Some(expr), None) => Schedule::cron(name, "schedule", expr, spec),
            (None, Some(every)) => crate::auth::parse_duration(every)
                .map(Schedule::Every)
                .ok_or_else(|| {
                    UserError::new(format!("job {name}: every = {every:?} is not an interval"))
                        .hint("write it as 45s, 10m, 6h or 1d")
                }),
            (Some(_), Some(_)) => Err(UserError::new(format!(
                "job {name} has both schedule and every"
            ))
            .hint("keep one of them")),
            (None, None) => Err(UserError::new(format!("job {name} has no schedule"))
                .hint("add schedule = \"30 2 * * *\" (cron) or every = \"6h\"")),
        }
    }

    /// When the job's restore drill runs: `verify-schedule`, a cron expression (in the
    /// job's `timezone`) or an interval; `None` without one (the drill, if the job has
    /// `verify`, follows each succeeded run).
    pub fn of_drill(name: &str, spec: &JobEntry) -> Result<Option<Schedule>, UserError> {
        let Some(expr) = &spec.verify_schedule else {
            return Ok(None);
        };
        if expr.split_whitespace().count() == 5 {
            return Schedule::cron(name, "verify-schedule", expr, spec).map(Some);
        }
        crate::auth::parse_duration(expr.trim())
            .map(|d| Some(Schedule::Every(d)))
            .ok_or_else(|| {
                UserError::new(format!(
                    "job {name}: verify-schedule = {expr:?} is neither a five-field cron expression nor an interval"
                ))
                .hint("e.g. \"0 4 * * 0\" (Sundays at 04:00 in the job's timezone) or \"7d\"; without it the drill follows each succeeded run")
            })
    }

    /// `expr` of the key `key` of job `name`: cron in the job's time zone.
    fn cron(name: &str, key: &str, expr: &str, spec: &JobEntry) -> Result<Schedule, UserError> {
        if expr.split_whitespace().count() != 5 {
            return Err(UserError::new(format!(
                "job {name}: {key} {expr:?} is not a five-field cron expression"
            ))
            .hint("minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\" for 02:30 every day"));
        }
        let cron = croner::Cron::new(expr).parse().map_err(|e| {
            UserError::new(format!("job {name}: {key} {expr:?}: {e}"))
                .hint("minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\"")
        })?;
        let tz = match &spec.timezone {
            None => chrono_tz::UTC,
            Some(z) => z.parse().map_err(|_| {
                UserError::new(format!("job {name}: {z:?} is not a time zone"))
                    .hint("use an IANA name such as Europe/Berlin or America/New_York")
            })?,
        };
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            tz,
        })
    }

    /// The first slot after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => Some(t + *d),
            Schedule::Cron { cron, tz } => cron
                .find_next_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|n| n.with_timezone(&Utc)),
        }
    }

    /// How often the job runs (the gap after the next slot): a resource not backed up
    /// within about two of these is unprotected.
    pub fn interval(&self, at: DateTime<Utc>) -> chrono::Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron { .. } => match self
                .next_after(at)
                .and_then(|n| self.next_after(n).map(|m| m - n))
            {
                Some(d) => d,
                None => chrono::Duration::days(1),
            },
        }
    }
}

/// Where a job is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `[jobs.NAME]` of the configuration file: changed by editing the file.
    File,
    /// Created through the API.
    Api,
}

/// A job as the API shows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Job {
    pub name: String,
    pub source: Source,
    /// What `[jobs.NAME]` says.
    pub spec: JobEntry,
}

impl Job {
    pub fn enabled(&self) -> bool {
        self.spec.enabled.unwrap_or(true)
    }

    pub fn schedule(&self) -> Result<Schedule, UserError> {
        Schedule::of(&self.name, &self.spec)
    }

    /// The share of items its restore drill reads back (percent), `None` without a drill.
    pub fn verify(&self) -> Result<Option<f64>, UserError> {
        self.spec.verify_percent(&self.name).map_err(|e| {
            let hint = e.hint();
            let u = UserError::new(e.to_string());
            match hint {
                Some(h) => u.hint(h),
                None => u,
            }
        })
    }

    /// When its restore drill runs: `None` after each succeeded run.
    pub fn drill_schedule(&self) -> Result<Option<Schedule>, UserError> {
        Schedule::of_drill(&self.name, &self.spec)
    }

    /// The backup this job asks for.
    pub fn request(&self) -> BackupRequest {
        let scope = |v: &Option<String>| v.as_deref().map(Scope::parse).unwrap_or(Scope::All);
        BackupRequest {
            users: scope(&self.spec.users),
            groups: scope(&self.spec.groups),
            sites: scope(&self.spec.sites),
            services: self.spec.services.clone(),
            exclude: self.spec.exclude.clone(),
            full_fidelity: self.spec.full_fidelity.unwrap_or(false),
            ..BackupRequest::default()
        }
    }

    /// The job's item-level retention (`keep-items`, `items-from`), `None` without one.
    pub fn item_rule(&self) -> Result<Option<cairn_app::retention::ItemRule>, UserError> {
        let rule = self.spec.item_retention(&self.name).map_err(|e| {
            let hint = e.hint();
            let u = UserError::new(e.to_string());
            match hint {
                Some(h) => u.hint(h),
                None => u,
            }
        })?;
        Ok(rule.map(|(days, from)| cairn_app::retention::ItemRule {
            keep: chrono::Duration::days(days),
            from: from.into(),
            text: format!(
                "{} from {}",
                self.spec.keep_items.as_deref().unwrap_or_default().trim(),
                from.as_str()
            ),
        }))
    }

    /// The job's retention as a forget rule on its tenant, `None` when it keeps everything.
    pub fn retention(&self) -> Option<cairn_repo::ForgetRule> {
        let s = &self.spec;
        let any = s.keep_last.is_some()
            || s.keep_daily.is_some()
            || s.keep_weekly.is_some()
            || s.keep_monthly.is_some()
            || s.keep_yearly.is_some()
            || s.keep_within_days.is_some();
        any.then(|| cairn_repo::ForgetRule {
            keep_last: s.keep_last,
            keep_daily: s.keep_daily,
            keep_weekly: s.keep_weekly,
            keep_monthly: s.keep_monthly,
            keep_yearly: s.keep_yearly,
            keep_within: s.keep_within_days.map(|d| chrono::Duration::days(d as i64)),
            only_tenant: Some(s.tenant.clone()),
            only_resource: None,
        })
    }
}

/// Whether `new` keeps less than `old` (a shorter retention: four-eyes, as forget).
pub fn shortens_retention(old: &JobEntry, new: &JobEntry) -> bool {
    let less = |a: Option<u32>, b: Option<u32>| match (a, b) {
        (None, None) => false,
        // Starting to thin a count that kept everything, or dropping a count that was
        // kept: both keep less only when the other counts do not make up for it, which
        // is not worth guessing: treat as shorter.
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => y < x,
    };
    let counts = |e: &JobEntry| {
        [
            e.keep_last,
            e.keep_daily,
            e.keep_weekly,
            e.keep_monthly,
            e.keep_yearly,
            e.keep_within_days,
        ]
    };
    if shortens_item_retention(old, new) {
        return true;
    }
    let (o, n) = (counts(old), counts(new));
    let any_old = o.iter().any(Option::is_some);
    // A rule where there was none keeps less than keeping everything.
    if !any_old {
        return n.iter().any(Option::is_some);
    }
    o.iter()
        .zip(n.iter())
        .any(|(a, b)| less(*a, *b) || (a.is_some() && b.is_none() && n.iter().any(Option::is_some)))
}

/// Whether `new`'s item-level retention keeps items for less time than `old`'s: a rule
/// where there was none, a shorter span, or counting from an item's date rather than its
/// deletion (which never comes for items still there). Spans that do not read as spans
/// are refused elsewhere.
fn shortens_item_retention(old: &JobEntry, new: &JobEntry) -> bool {
    let rule = |e: &JobEntry| e.item_retention("").ok().flatten();
    match (rule(old), rule(new)) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some((a, fa)), Some((b, fb))) => {
            b < a
                || (fa == cairn_config::ItemsFrom::Deleted
                    && fb == cairn_config::ItemsFrom::Modified)
        }
    }
}

/// The jobs of the configuration file and of the API, by name.
pub fn all(file: &BTreeMap<String, JobEntry>, store: &Store) -> anyhow::Result<Vec<Job>> {
    let mut jobs: Vec<Job> = file
        .iter()
        .map(|(name, spec)| Job {
            name: name.clone(),
            source: Source::File,
            spec: spec.clone(),
        })
        .collect();
    let api: Vec<(String, String)> = store.with(|c| {
        let mut st = c.prepare("SELECT name, spec FROM server_jobs ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })?;
    for (name, spec) in api {
        if file.contains_key(&name) {
            continue;
        }
        jobs.push(Job {
            name,
            source: Source::Api,
            spec: serde_json::from_str(&spec)?,
        });
    }
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(jobs)
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Running,
    /// Every resource has a new restore point.
    Succeeded,
    /// Some resources have one, some do not.
    Partial,
    /// No resource has one (or the run could not start).
    Failed,
}

impl Status {
    /// As the run history and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "running" => Status::Running,
            "succeeded" => Status::Succeeded,
            "partial" => Status::Partial,
            _ => Status::Failed,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A backup of the job's scope (and its retention).
    Backup,
    /// A restore drill: a sample of the job's latest restore points read back and compared
    /// with the catalog.
    Drill,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Drill => "drill",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "drill" => Kind::Drill,
            _ => Kind::Backup,
        }
    }
}

/// What a restore drill found, in a run of kind `drill`.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DrillSummary {
    /// Share of the items of each restore point read back, in percent.
    pub sample_percent: f64,
    /// Restore points tested (the latest of each of the job's resources).
    pub points: u64,
    /// Items read back in full.
    pub checked: u64,
    /// Bytes read back.
    pub bytes: u64,
    /// Items that could not be read back as they were backed up.
    pub failed: u64,
}

/// An item a restore drill could not read back as it was backed up.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DrillFailure {
    pub tenant: String,
    pub resource: String,
    /// The restore point (its number for the resource).
    pub point: i64,
    /// The item's path in the restore point (empty: the whole restore point).
    pub path: String,
    pub reason: String,
}

/// A run as listed.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Run {
    pub id: i64,
    pub job: String,
    pub tenant: String,
    /// `backup`, or `drill` (a restore drill: `drill` says what it found).
    pub kind: Kind,
    pub status: Status,
    /// `schedule`, `startup` (missed while the server was down), `api`, or for a drill
    /// `after-backup` (it followed the backup run before it).
    pub trigger: String,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub resources: u64,
    pub failed: u64,
    pub items: u64,
    pub fetched: u64,
    pub bytes: u64,
    pub requests: u64,
    pub throttled: u64,
    /// Restore points removed by the job's retention after the run.
    pub forgotten: u64,
    /// Items removed by the job's item-level retention (`keep-items`) after the run.
    pub items_expired: u64,
    pub error: Option<String>,
    /// A drill's findings (for a drill, `resources`, `items` and `failed` count restore
    /// points tested, items read back and items that failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillSummary>,
}

/// One resource's outcome in a run.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RunResource {
    pub resource: String,
    pub kind: String,
    pub ok: bool,
    pub snapshot: Option<String>,
    pub items: u64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub fetched: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    /// Attempts within the run (failed for a transient reason: retried with backoff).
    pub attempts: u32,
    pub seconds: f64,
    /// Signs of ransomware or mass change in the new restore point against the one before
    /// (`signal`, `summary`, `numbers`, `examples`: example items for roles that may
    /// browse): not empty, the point is suspect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<cairn_backup::Finding>,
    /// The automatic legal hold placed on the resource's last clean restore point when the
    /// new one is suspect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

/// A run with its resources.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub results: Vec<RunResource>,
    /// A drill's items that could not be read back, every one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drill_failures: Vec<DrillFailure>,
}

const RUN_COLS: &str = "id, job, tenant, status, trigger, started, finished, resources, failed, items, fetched, bytes, requests, throttled, forgotten, error, kind, sample, items_expired";

fn run_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    let kind = Kind::parse(&r.get::<_, String>(16)?);
    let drill = match kind {
        Kind::Backup => None,
        Kind::Drill => Some(DrillSummary {
            sample_percent: r.get::<_, Option<f64>>(17)?.unwrap_or_default(),
            points: r.get::<_, i64>(7)? as u64,
            checked: r.get::<_, i64>(9)? as u64,
            bytes: r.get::<_, i64>(11)? as u64,
            failed: r.get::<_, i64>(8)? as u64,
        }),
    };
    Ok(Run {
        id: r.get(0)?,
        job: r.get(1)?,
        tenant: r.get(2)?,
        kind,
        drill,
        status: Status::parse(&r.get::<_, String>(3)?),
        trigger: r.get(4)?,
        started: time(r.get(5)?),
        finished: r.get::<_, Option<i64>>(6)?.map(time),
        resources: r.get::<_, i64>(7)? as u64,
        failed: r.get::<_, i64>(8)? as u64,
        items: r.get::<_, i64>(9)? as u64,
        fetched: r.get::<_, i64>(10)? as u64,
        bytes: r.get::<_, i64>(11)? as u64,
        requests: r.get::<_, i64>(12)? as u64,
        throttled: r.get::<_, i64>(13)? as u64,
        forgotten: r.get::<_, i64>(14)? as u64,
        items_expired: r.get::<_, i64>(18)? as u64,
        error: r.get(15)?,
    })
}

/// Runs of a job, newest first.
pub fn runs(store: &Store, job: &str, limit: u32) -> anyhow::Result<Vec<Run>> {
    store.with(|c| {
        let mut st = c.prepare(&format!(
            "SELECT {RUN_COLS} FROM server_runs WHERE job=?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![job, limit], run_at)?;
        rows.collect()
    })
}

/// Every job's runs started since `t`, oldest first.
pub fn runs_since(store: &Store, t: DateTime<Utc>) -> anyhow::Result<Vec<Run>> {
    store.with(|c| {
        let mut st = c.prepare(&format!(
            "SELECT {RUN_COLS} FROM server_runs WHERE started >= ?1 ORDER BY id"
        ))?;
        let rows = st.query_map(params![t.timestamp()], run_at)?;
        rows.collect()
    })
}

/// One run with its resources.
pub fn run(store: &Store, id: i64) -> anyhow::Result<Option<RunDetail>> {
    store.with(|c| {
        let Some(run) = c
            .query_row(
                &format!("SELECT {RUN_COLS} FROM server_runs WHERE id=?1"),
                params![id],
                run_at,
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut st = c.prepare(
            "SELECT resource, kind, ok, snapshot, items, added, changed, removed, fetched, bytes,
                    skipped, warnings, error, attempts, seconds, findings, hold
             FROM server_run_resources WHERE run=?1 ORDER BY resource",
        )?;
        let results = st
            .query_map(params![id], |r| {
                Ok(RunResource {
                    resource: r.get(0)?,
                    kind: r.get(1)?,
                    ok: r.get(2)?,
                    snapshot: r.get(3)?,
                    items: r.get::<_, i64>(4)? as u64,
                    added: r.get::<_, i64>(5)? as u64,
                    changed: r.get::<_, i64>(6)? as u64,
                    removed: r.get::<_, i64>(7)? as u64,
                    fetched: r.get::<_, i64>(8)? as u64,
                    bytes: r.get::<_, i64>(9)? as u64,
                    skipped: r.get::<_, i64>(10)? as u64,
                    warnings: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
                    error: r.get(12)?,
                    attempts: r.get(13)?,
                    seconds: r.get(14)?,
                    findings: r
                        .get::<_, Option<String>>(15)?
                        .and_then(|f| serde_json::from_str(&f).ok())
                        .unwrap_or_default(),
                    hold: r.get(16)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut st = c.prepare(
            "SELECT tenant, resource, point, path, reason FROM server_drill_failures
             WHERE run=?1 ORDER BY seq",
        )?;
        let drill_failures = st
            .query_map(params![id], |r| {
                Ok(DrillFailure {
                    tenant: r.get(0)?,
                    resource: r.get(1)?,
                    point: r.get(2)?,
                    path: r.get(3)?,
                    reason: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(RunDetail {
            run,
            results,
            drill_failures,
        }))
    })
}

/// The last time each resource of a job was backed up successfully.
pub fn last_success(store: &Store, job: &str) -> anyhow::Result<BTreeMap<String, DateTime<Utc>>> {
    store.with(|c| {
        let mut st = c.prepare(
            "SELECT rr.resource, max(r.started) FROM server_run_resources rr
               JOIN server_runs r ON r.id = rr.run
             WHERE r.job=?1 AND rr.ok=1 GROUP BY rr.resource",
        )?;
        let rows = st.query_map(params![job], |r| Ok((r.get(0)?, time(r.get(1)?))))?;
        rows.collect()
    })
}

/// The latest run of a job of `kind`, if any.
pub fn last_run(store: &Store, job: &str, kind: Kind) -> anyhow::Result<Option<Run>> {
    store.with(|c| {
        c.query_row(
            &format!(
                "SELECT {RUN_COLS} FROM server_runs WHERE job=?1 AND kind=?2 ORDER BY id DESC LIMIT 1"
            ),
            params![job, kind.as_str()],
            run_at,
        )
        .optional()
    })
}

/// The slot the last run of a job of `kind` was for (its start), if any.
pub fn last_started(store: &Store, job: &str, kind: Kind) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(store
        .one::<i64>(
            "SELECT started FROM server_runs WHERE job=?1 AND kind=?2 ORDER BY id DESC LIMIT 1",
            params![job, kind.as_str()],
        )?
        .map(time))
}

/// Whether the last run of `job` was cut short by the server stopping: it runs again at
/// start-up, and resumes from what it had staged.
pub fn last_interrupted(store: &Store, job: &str) -> anyhow::Result<bool> {
    let e: Option<Option<String>> = store.with(|c| {
        c.query_row(
            "SELECT error FROM server_runs WHERE job=?1 AND kind='backup' ORDER BY id DESC LIMIT 1",
            params![job],
            |r| r.get(0),
        )
        .optional()
    })?;
    Ok(e.flatten().is_some_and(|e| e.starts_with(INTERRUPTED)))
}

/// How a run cut short by a stop is recorded.
const INTERRUPTED: &str = "interrupted";

/// Runs that were under way when the server stopped (killed, or stopped mid-run): failed,
/// and their job runs again at start-up, resuming from what the interrupted run staged.
pub fn close_interrupted(store: &Store) -> anyhow::Result<u64> {
    let n = store.with(|c| {
        c.execute(
            "UPDATE server_runs SET status='failed', finished=?1,
               error='interrupted: the server stopped during the run; the next run resumes from what it had fetched'
             WHERE status='running'",
            params![now()],
        )
    })?;
    Ok(n as u64)
}

/// Records that a run of `job` began.
pub fn begin(store: &Store, job: &str, tenant: &str, trigger: &str) -> anyhow::Result<i64> {
    store.with(|c| {
        c.execute(
            "INSERT INTO server_runs (job, tenant, status, trigger, started) VALUES (?1, ?2, 'running', ?3, ?4)",
            params![job, tenant, trigger, now()],
        )?;
        Ok(c.last_insert_rowid())
    })
}

/// Records that a restore drill of `job` began, reading back `sample` percent.
pub fn begin_drill(
    store: &Store,
    job: &str,
    tenant: &str,
    trigger: &str,
    sample: f64,
) -> anyhow::Result<i64> {
    store.with(|c| {
        c.execute(
            "INSERT INTO server_runs (job, tenant, kind, status, trigger, started, sample)
             VALUES (?1, ?2, 'drill', 'running', ?3, ?4, ?5)",
            params![job, tenant, trigger, now(), sample],
        )?;
        Ok(c.last_insert_rowid())
    })
}

/// How a restore drill ended: what it found, or why it could not run.
pub struct DrillOutcome {
    pub status: Status,
    pub report: Option<cairn_app::maintenance::DrillReport>,
    pub error: Option<String>,
}

impl DrillOutcome {
    /// A drill that could not run.
    pub fn failed(error: impl Into<String>) -> DrillOutcome {
        DrillOutcome {
            status: Status::Failed,
            report: None,
            error: Some(error.into()),
        }
    }

    /// The outcome of a drill that ran: failed when an item failed, or when there was no
    /// restore point to test (a drill that tests nothing proves nothing).
    pub fn of(report: cairn_app::maintenance::DrillReport) -> DrillOutcome {
        let (status, error) = if !report.failed.is_empty() {
            (
                Status::Failed,
                Some(format!(
                    "{} items could not be read back as they were backed up (hint: `cairn check --read-data` examines the whole repository; `cairn repair index` and `cairn repair snapshots` mend what can be mended, a copy restores the rest)",
                    report.failed.len()
                )),
            )
        } else if report.points == 0 {
            (
                Status::Failed,
                Some("no restore point of the job's resources to test (hint: the drill reads back what the job's backups wrote; run the job first)".into()),
            )
        } else {
            (Status::Succeeded, None)
        };
        DrillOutcome {
            status,
            report: Some(report),
            error,
        }
    }
}

/// Records how a restore drill ended, with every item that failed.
pub fn finish_drill(store: &Store, id: i64, o: &DrillOutcome) -> anyhow::Result<()> {
    store.with(|c| {
        let tx = c.transaction()?;
        let r = o.report.as_ref();
        tx.execute(
            "UPDATE server_runs SET status=?2, finished=?3, resources=?4, failed=?5, items=?6,
               bytes=?7, error=?8
             WHERE id=?1",
            params![
                id,
                o.status.as_str(),
                now(),
                r.map(|r| r.points).unwrap_or(0) as i64,
                r.map(|r| r.failed.len()).unwrap_or(0) as i64,
                r.map(|r| r.checked).unwrap_or(0) as i64,
                r.map(|r| r.bytes).unwrap_or(0) as i64,
                o.error,
            ],
        )?;
        for (seq, f) in r.map(|r| r.failed.as_slice()).unwrap_or_default().iter().enumerate() {
            tx.execute(
                "INSERT OR REPLACE INTO server_drill_failures (run, seq, tenant, resource, point, path, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, seq as i64, f.tenant, f.resource, f.point, f.path, f.reason],
            )?;
        }
        tx.commit()
    })
}

/// A run's outcome, from the engine's reports (one per attempt of each resource).
pub struct Outcome {
    pub status: Status,
    pub report: Option<JobReport>,
    pub attempts: BTreeMap<String, u32>,
    pub forgotten: u64,
    /// The job's item-level retention after the run, when it has one and the run succeeded.
    pub items: Option<ItemRetention>,
    /// The resources whose new restore point is suspect, by name.
    pub suspects: BTreeMap<String, SuspectPoint>,
    pub error: Option<String>,
}

/// A suspect restore point of a run, as detection recorded it.
#[derive(Clone, Debug)]
pub struct SuspectPoint {
    /// The point, its findings and the automatic hold placed.
    pub suspect: cairn_app::detect::Suspect,
    /// The restore point the automatic hold keeps (the last clean one).
    pub clean_point: Option<i64>,
}

/// What the job's item-level retention did after a run.
#[derive(Clone, Debug, Default)]
pub struct ItemRetention {
    /// The rule, as `7y from modified`.
    pub rule: String,
    /// Items removed from every restore point holding them.
    pub expired: u64,
    /// Items past the rule that a legal hold keeps.
    pub spared: u64,
    /// Restore points rewritten without expired items.
    pub rewritten: u64,
    /// Why it did not run to the end.
    pub error: Option<String>,
}

/// Records how a run ended.
pub fn finish(store: &Store, id: i64, o: &Outcome) -> anyhow::Result<()> {
    store.with(|c| {
        let tx = c.transaction()?;
        let r = o.report.as_ref();
        let sum = |f: &dyn Fn(&ResourceReport) -> u64| -> i64 {
            r.map(|r| r.resources.iter().map(f).sum::<u64>())
                .unwrap_or(0) as i64
        };
        tx.execute(
            "UPDATE server_runs SET status=?2, finished=?3, resources=?4, failed=?5, items=?6,
               fetched=?7, bytes=?8, requests=?9, throttled=?10, forgotten=?11, error=?12,
               items_expired=?13
             WHERE id=?1",
            params![
                id,
                o.status.as_str(),
                now(),
                r.map(|r| r.resources.len()).unwrap_or(0) as i64,
                r.map(|r| r.failed()).unwrap_or(0) as i64,
                sum(&|x| x.items),
                sum(&|x| x.fetched),
                sum(&|x| x.fetched_bytes),
                r.map(|r| r.requests).unwrap_or(0) as i64,
                r.map(|r| r.throttled).unwrap_or(0) as i64,
                o.forgotten as i64,
                o.error,
                o.items.as_ref().map(|i| i.expired).unwrap_or(0) as i64,
            ],
        )?;
        for res in r.map(|r| r.resources.as_slice()).unwrap_or_default() {
            let findings = (!res.findings.is_empty())
                .then(|| serde_json::to_string(&res.findings).unwrap_or_default());
            let hold = o
                .suspects
                .get(&res.resource)
                .and_then(|s| s.suspect.hold.clone());
            let warnings: Vec<String> = res
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.object, s.reason))
                .collect();
            tx.execute(
                "INSERT OR REPLACE INTO server_run_resources (run, resource, kind, ok, snapshot,
                   items, added, changed, removed, fetched, bytes, skipped, warnings, error,
                   attempts, seconds, findings, hold)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                   ?17, ?18)",
                params![
                    id,
                    res.resource,
                    res.kind,
                    res.ok(),
                    res.snapshot,
                    res.items as i64,
                    res.added as i64,
                    res.changed as i64,
                    res.removed as i64,
                    res.fetched as i64,
                    res.fetched_bytes as i64,
                    res.skipped.len() as i64,
                    serde_json::to_string(&warnings).unwrap_or_default(),
                    res.error,
                    o.attempts.get(&res.resource).copied().unwrap_or(1),
                    res.seconds,
                    findings,
                    hold,
                ],
            )?;
        }
        tx.commit()
    })
}

/// Which jobs are running now: one run per job at a time.
#[derive(Default)]
pub struct Running {
    names: Mutex<HashSet<String>>,
}

/// A job's run slot; the job is free again when it is dropped.
pub struct Slot {
    running: Arc<Running>,
    name: String,
}

impl Running {
    /// The job's slot, `None` when a run of it is under way.
    pub fn claim(self: &Arc<Self>, name: &str) -> Option<Slot> {
        let mut n = self.names.lock().unwrap_or_else(|e| e.into_inner());
        n.insert(name.to_string()).then(|| Slot {
            running: self.clone(),
            name: name.to_string(),
        })
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.running
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

/// A run's backup progress: nothing to draw, the report says it all.
pub struct Quiet;

impl cairn_backup::Progress for Quiet {}
impl BackupProgress for Quiet {}

/// The status a set of resource reports amounts to.
pub fn status_of(report: &JobReport) -> Status {
    match (report.failed(), report.resources.len()) {
        (_, 0) => Status::Failed,
        (0, _) => Status::Succeeded,
        (f, n) if f == n => Status::Failed,
        _ => Status::Partial,
    }
}

/// Merges a retry's reports into the run's: a resource's latest attempt stands.
pub fn merge(into: &mut JobReport, retry: JobReport) {
    for r in retry.resources {
        match into.resources.iter_mut().find(|x| x.resource == r.resource) {
            Some(slot) => *slot = r,
            None => into.resources.push(r),
        }
    }
    into.requests += retry.requests;
    into.throttled += retry.throttled;
    into.seconds += retry.seconds;
}

/// The resources to retry: those that failed for a transient reason, as a request.
pub fn retry_request(job: &Job, report: &JobReport) -> Option<BackupRequest> {
    let failed: Vec<&ResourceReport> = report
        .resources
        .iter()
        .filter(|r| !r.ok() && r.transient)
        .collect();
    if failed.is_empty() {
        return None;
    }
    let of = |kind: &str| -> Scope {
        let names: Vec<String> = failed
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| match kind {
                "group" => r.resource.trim_start_matches("group:").to_string(),
                _ => r.resource.clone(),
            })
            .collect();
        if names.is_empty() {
            Scope::None
        } else {
            Scope::Only(names)
        }
    };
    Some(BackupRequest {
        users: of("user"),
        groups: of("group"),
        sites: of("site"),
        exclude: Vec::new(),
        ..job.request()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spec(schedule: Option<&str>, every: Option<&str>) -> JobEntry {
        JobEntry {
            tenant: "contoso".into(),
            schedule: schedule.map(str::to_string),
            every: every.map(str::to_string),
            ..JobEntry::default()
        }
    }

    #[test]
    fn cron_in_a_time_zone_and_intervals() {
        let mut s = spec(Some("30 2 * * *"), None);
        s.timezone = Some("Europe/Berlin".into());
        let sched = Schedule::of("n", &s).unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        // 02:30 in Berlin (summer time) is 00:30 UTC.
        assert_eq!(
            sched.next_after(t).unwrap(),
            Utc.with_ymd_and_hms(2026, 7, 1, 0, 30, 0).unwrap()
        );
        assert_eq!(sched.interval(t), chrono::Duration::days(1));
        let every = Schedule::of("n", &spec(None, Some("10m"))).unwrap();
        assert_eq!(
            every.next_after(t).unwrap(),
            t + chrono::Duration::minutes(10)
        );
        for bad in [
            spec(Some("* * *"), None),
            spec(Some("61 * * * *"), None),
            spec(None, Some("often")),
            spec(None, None),
            spec(Some("* * * * *"), Some("1m")),
        ] {
            let e = Schedule::of("n", &bad).unwrap_err();
            assert!(e.hint_text().is_some(), "{e}");
        }
    }

    #[test]
    fn a_drill_follows_each_run_or_its_own_schedule() {
        let mut s = spec(None, Some("1d"));
        assert!(Schedule::of_drill("n", &s).unwrap().is_none());
        s.verify = Some("5%".into());
        assert!(Schedule::of_drill("n", &s).unwrap().is_none());
        s.verify_schedule = Some("7d".into());
        let t = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        let every = Schedule::of_drill("n", &s).unwrap().unwrap();
        assert_eq!(every.next_after(t).unwrap(), t + chrono::Duration::days(7));
        s.verify_schedule = Some("0 4 * * 0".into());
        s.timezone = Some("Europe/Berlin".into());
        let cron = Schedule::of_drill("n", &s).unwrap().unwrap();
        // Sunday 5 July 2026, 04:00 in Berlin (summer time) is 02:00 UTC.
        assert_eq!(
            cron.next_after(t).unwrap(),
            Utc.with_ymd_and_hms(2026, 7, 5, 2, 0, 0).unwrap()
        );
        for bad in ["weekly", "0 4 * *", "61 4 * * 0"] {
            s.verify_schedule = Some(bad.into());
            let e = Schedule::of_drill("n", &s).unwrap_err();
            assert!(e.to_string().contains("job n"), "{e}");
            assert!(e.to_string().contains("verify-schedule"), "{e}");
            assert!(e.hint_text().is_some(), "{e}");
        }
    }

    #[test]
    fn fewer_kept_points_is_a_shorter_retention() {
        let mut a = spec(None, Some("1d"));
        a.keep_daily = Some(7);
        let mut b = a.clone();
        assert!(!shortens_retention(&a, &b));
        b.keep_daily = Some(30);
        assert!(!shortens_retention(&a, &b), "longer");
        b.keep_daily = Some(3);
        assert!(shortens_retention(&a, &b));
        let none = spec(None, Some("1d"));
        assert!(
            shortens_retention(&none, &a),
            "a rule where everything was kept"
        );
        assert!(!shortens_retention(&a, &none), "keeping everything");
    }

    #[test]
    fn a_job_asks_for_full_fidelity_copies_only_when_its_key_says_so() {
        // As the API's job body (and the file's table) spells it.
        let job = |spec: serde_json::Value| Job {
            name: "mail".into(),
            source: Source::Api,
            spec: serde_json::from_value(spec).unwrap(),
        };
        let on =
            job(serde_json::json!({"tenant": "contoso", "every": "1d", "full-fidelity": true}));
        assert!(on.request().full_fidelity);
        let off = job(serde_json::json!({"tenant": "contoso", "every": "1d"}));
        assert!(!off.request().full_fidelity);
    }

    #[test]
    fn items_kept_for_less_time_is_a_shorter_retention() {
        let items = |keep: Option<&str>, from: Option<&str>| JobEntry {
            keep_items: keep.map(str::to_string),
            items_from: from.map(str::to_string),
            ..spec(None, Some("1d"))
        };
        let seven = items(Some("7y"), None);
        assert!(
            shortens_retention(&items(None, None), &seven),
            "a rule where none was"
        );
        assert!(
            !shortens_retention(&seven, &items(None, None)),
            "keeping every item"
        );
        assert!(shortens_retention(&seven, &items(Some("1y"), None)));
        assert!(
            !shortens_retention(&seven, &items(Some("2556d"), None)),
            "the same span"
        );
        assert!(!shortens_retention(&seven, &items(Some("10y"), None)));
        let deleted = items(Some("7y"), Some("deleted"));
        assert!(
            !shortens_retention(&seven, &deleted),
            "from deletion keeps longer"
        );
        assert!(shortens_retention(&deleted, &seven));
        let job = Job {
            name: "n".into(),
            source: Source::File,
            spec: deleted,
        };
        let rule = job.item_rule().unwrap().unwrap();
        assert_eq!(rule.keep.num_days(), 7 * 365 + 1);
        assert_eq!(rule.from, cairn_app::retention::From::Deleted);
        assert_eq!(rule.text, "7y from deleted");
        let bad = Job {
            spec: items(Some("7"), None),
            ..job
        };
        let e = bad.item_rule().unwrap_err();
        assert!(e.to_string().contains("job n"), "{e}");
        assert!(e.hint_text().is_some(), "{e}");
    }
}
