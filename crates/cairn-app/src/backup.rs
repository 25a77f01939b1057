//! A backup run: which resources (users, groups, sites, minus exclusions), under the
//! lock that keeps one backup of a repository at a time on a machine, through the engine.

use crate::Workspace;
use crate::error::UserError;
use cairn_backup::{BackupOptions, Engine, JobReport, Service, Target};
use cairn_config::TenantOverrides;
use cairn_graph::GraphClient;
use std::sync::Arc;

/// Which resources of a kind: all, none, or these names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    All,
    None,
    Only(Vec<String>),
}

impl Scope {
    /// `all`, `none`, or names separated by commas.
    pub fn parse(v: &str) -> Scope {
        match v.trim() {
            "all" | "" => Scope::All,
            "none" => Scope::None,
            list => Scope::Only(
                list.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
        }
    }

    /// The names the engine's discovery takes (`[]`: all), `None` for none.
    fn names(&self) -> Option<&[String]> {
        match self {
            Scope::All => Some(&[]),
            Scope::None => None,
            Scope::Only(v) => Some(v),
        }
    }
}

/// What to back up, and how hard to push.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct BackupRequest {
    pub users: Scope,
    pub groups: Scope,
    pub sites: Scope,
    /// mail, calendar, contacts, onedrive, sharepoint, teams; `None`: all of them.
    pub services: Option<Vec<String>>,
    /// Resources left out: names, `*` matching any run of characters.
    pub exclude: Vec<String>,
    /// Resources backed up at once.
    pub parallel: usize,
    /// Restore points written to the repository at once.
    pub archives: usize,
    /// Also keep the earlier versions of OneDrive and SharePoint files.
    pub file_versions: bool,
    /// Also keep each mailbox item's full-fidelity stream beside its MIME.
    pub full_fidelity: bool,
}

impl Default for BackupRequest {
    fn default() -> Self {
        let o = BackupOptions::new(".".into());
        Self {
            users: Scope::All,
            groups: Scope::All,
            sites: Scope::All,
            services: None,
            exclude: Vec::new(),
            parallel: o.parallel,
            archives: o.archives,
            file_versions: false,
            full_fidelity: false,
        }
    }
}

/// Backup progress: the engine's, and the plan once the resources are known.
pub trait BackupProgress: cairn_backup::Progress {
    /// `resources` will be backed up through `graph` (its counters: requests, throttling).
    fn planned(&self, _resources: u64, _graph: &Arc<GraphClient>) {}
    /// The run is over.
    fn done(&self) {}
}

/// `*` globbing, case-insensitive.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.to_lowercase(), name.to_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let mut rest = n.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The services asked for, each checked.
pub fn services(names: Option<&[String]>) -> anyhow::Result<Vec<Service>> {
    match names {
        None => Ok(Service::ALL.to_vec()),
        Some(list) => list
            .iter()
            .map(|s| {
                Service::parse(s).ok_or_else(|| {
                    UserError::new(format!("unknown service '{s}'"))
                        .hint("services are mail, calendar, contacts, onedrive, sharepoint, teams")
                        .into()
                })
            })
            .collect(),
    }
}

/// Backs up the request's resources of `tenant`: one restore point per resource. The
/// report says per resource what was added, changed, removed and fetched, or why not.
pub async fn backup(
    ws: Arc<Workspace>,
    tenant: &TenantOverrides,
    req: &BackupRequest,
    progress: Arc<dyn BackupProgress>,
) -> anyhow::Result<JobReport> {
    let mut services = services(req.services.as_deref())?;
    let tenant = ws.tenant(tenant)?;
    let graph = ws.graph(&tenant)?;
    // A service the backup app may not read is skipped with what to grant, not failed
    // item by item.
    let mut not_granted: Vec<(Service, String)> = Vec::new();
    if let Some(granted) = graph.granted_roles().await? {
        services.retain(|s| {
            let need = crate::permissions::need_of(*s);
            if need.can_read(&granted) {
                return true;
            }
            not_granted.push((
                *s,
                format!(
                    "the backup app lacks the application permission {}: grant it, then consent at {}",
                    need.read[0],
                    crate::permissions::admin_consent_url(&tenant.login_url, &tenant.tenant_id, &tenant.client_id)
                ),
            ));
            false
        });
        if services.is_empty() {
            return Err(UserError::new(format!(
                "the backup app of tenant {} may read none of the services asked for",
                tenant.key()
            ))
            .hint(
                not_granted
                    .first()
                    .map(|(_, w)| w.clone())
                    .unwrap_or_default(),
            )
            .into());
        }
    }
    let key = tenant.key();
    let directory = cairn_backup::Directory {
        graph: &graph,
        tenant: &key,
    };
    let mut targets: Vec<Target> = Vec::new();
    if let Some(only) = req.users.names() {
        targets.extend(directory.users(only).await?);
    }
    if let Some(only) = req.groups.names() {
        targets.extend(directory.groups(only).await?);
    }
    if let Some(only) = req.sites.names() {
        targets.extend(directory.sites(only).await?);
    }
    targets.retain(|t| !req.exclude.iter().any(|p| matches(p, &t.name)));
    if targets.is_empty() {
        return Err(UserError::new("nothing to back up")
            .hint("check --users, --groups, --sites and --exclude")
            .into());
    }
    let mut report = match ws.settings().nats.clone() {
        // Handed to workers as one task per resource.
        Some(nats) => {
            progress.planned(targets.len() as u64, &graph);
            crate::distribute::run(
                &ws,
                &nats,
                &tenant,
                targets,
                &services,
                req,
                progress.clone(),
            )
            .await?
        }
        None => {
            ws.ensure_writer()?;
            let local = ws.local();
            let _lock = local.lock_for_backup()?;
            let (repo, catalog) = {
                let ws = ws.clone();
                tokio::task::spawn_blocking(move || {
                    anyhow::Ok((ws.repo()?, ws.catalog_for_backup()?))
                })
                .await??
            };
            let mut opts = BackupOptions::new(local.spool.clone());
            opts.services = services;
            opts.parallel = req.parallel.max(1);
            opts.archives = req.archives.max(1);
            opts.file_versions = req.file_versions;
            opts.full_fidelity = req.full_fidelity;
            let engine = Arc::new(Engine::new(
                graph.clone(),
                repo,
                catalog,
                &key,
                opts,
                progress.clone(),
            ));
            progress.planned(targets.len() as u64, &graph);
            engine.run(targets).await
        }
    };
    progress.done();
    for r in &mut report.resources {
        for (service, why) in &not_granted {
            let applies = match service {
                Service::SharePoint => r.kind != "user",
                _ => r.kind == "user",
            };
            if applies {
                r.skipped.push(cairn_backup::Skipped {
                    object: crate::permissions::need_of(*service).part.to_string(),
                    reason: why.clone(),
                });
            }
        }
    }
    // Each new restore point is scored against the previous one; a suspect one is
    // recorded and its resource's last clean point held.
    let mut resources = std::mem::take(&mut report.resources);
    let (ws2, key) = (ws.clone(), tenant.key());
    let thresholds = ws.config().file().detection.clone();
    let scored = tokio::task::spawn_blocking(move || {
        let r = crate::detect::after_backup(&ws2, &key, &mut resources, &thresholds);
        (resources, r)
    })
    .await?;
    report.resources = scored.0;
    // The restore points are written whatever the scoring does: a failure to score is
    // reported on each resource, not the run's failure.
    if let Err(e) = scored.1 {
        tracing::warn!("ransomware detection could not score this run: {e:#}");
        for r in report.resources.iter_mut().filter(|r| r.snapshot.is_some()) {
            r.skipped.push(cairn_backup::Skipped {
                object: "ransomware detection".into(),
                reason: format!("{e:#}"),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("*@contractors.example", "a@Contractors.example"));
        assert!(!matches("*@contractors.example", "a@contoso.example"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("exact@x", "EXACT@x"));
    }

    #[test]
    fn selections() {
        assert_eq!(Scope::parse("all"), Scope::All);
        assert_eq!(Scope::parse("none"), Scope::None);
        assert_eq!(
            Scope::parse("a@x, b@x"),
            Scope::Only(vec!["a@x".to_string(), "b@x".to_string()])
        );
    }
}
