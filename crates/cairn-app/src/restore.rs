//! Restores: a restore point back into the tenant it was backed up from, never another.

use crate::Workspace;
use cairn_catalog::select;
use cairn_config::TenantOverrides;
use cairn_restore::{
    Collision, Planned, PointSel, RestoreError, RestoreOptions, RestoreReport, RestoreTarget,
    Restorer, Selection,
};
use futures::Stream;
use std::sync::Arc;

/// What to restore, where to, and what to do with what is in the way.
#[derive(Clone, Debug)]
pub struct RestoreRequest {
    /// `RESOURCE[@POINT]`.
    pub target_spec: String,
    /// Paths of the restore point (`mail/Inbox`); empty: everything.
    pub paths: Vec<String>,
    pub target: RestoreTarget,
    pub collision: Collision,
    /// Items restored at once.
    pub concurrency: usize,
}

/// A restore resolved: the restorer bound to the resource's tenant, and what it restores.
pub struct Prepared {
    /// The client restores go through.
    graph: Arc<cairn_graph::GraphClient>,
    /// Whether it is the tenant's restore app (else its backup app).
    restore_app: bool,
    pub restorer: Restorer,
    pub selection: Selection,
    pub options: RestoreOptions,
    /// The tenant restored into, as the catalog names it.
    pub tenant: String,
}

/// Resolves a restore. Items go back into the tenant they were backed up from: without a
/// tenant in `tenant` and with several configured, the resource's name tells which when
/// only one tenant has it, and the error lists the tenants that do when several have.
pub fn prepare(
    ws: &Workspace,
    tenant: &TenantOverrides,
    req: &RestoreRequest,
    progress: Arc<dyn cairn_restore::Progress>,
) -> anyhow::Result<Prepared> {
    let catalog = ws.catalog()?;
    let mut tenant = tenant.clone().with_env(ws.config().env());
    if tenant.tenant.is_none() && tenant.tenant_id.is_none() && ws.config().tenant_names().len() > 1
    {
        let found = select::select(&*catalog, None, &req.target_spec)?;
        tenant.tenant = Some(found.resource.tenant);
    }
    let resolved = ws.tenant(&tenant)?;
    let key = resolved.key();
    let found = select::select(&*catalog, Some(&key), &req.target_spec)?;
    // The restore app when the tenant has one; the backup app otherwise (checked to be
    // able to write before anything is done: `Prepared::check_writes`).
    let (graph, restore_app) = match resolved.restore_graph_config()? {
        Some(cfg) => (Arc::new(cairn_graph::GraphClient::new(cfg)?), true),
        None => (ws.graph(&resolved)?, false),
    };
    let repo = ws.repo()?;
    Ok(Prepared {
        graph: graph.clone(),
        restore_app,
        restorer: Restorer::new(&key, graph, repo, catalog)
            .with_progress(progress)
            .with_beta(resolved.beta),
        selection: Selection {
            resource: found.resource.name,
            point: PointSel::Seq(found.point.seq),
            paths: req.paths.clone(),
        },
        options: RestoreOptions {
            target: req.target.clone(),
            collision: req.collision,
            concurrency: req.concurrency.max(1),
        },
        tenant: key,
    })
}

impl Prepared {
    /// Without a restore app, the backup app restores: refused when its token says it
    /// can only read, with what to set up.
    pub async fn check_writes(&self) -> anyhow::Result<()> {
        if self.restore_app {
            return Ok(());
        }
        match self.graph.granted_roles().await? {
            Some(granted) if !crate::permissions::can_write_anything(&granted) => Err(
                crate::UserError::new(format!(
                    "tenant {} has no restore app, and its backup app may only read",
                    self.tenant
                ))
                .hint(format!(
                    "register a restore app with write permissions (docs/entra-app.md) and add it: `cairn tenant add {} … --restore-client-id ID --restore-client-secret-file FILE --force`",
                    self.tenant
                ))
                .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Restores; one item's failure is reported and the rest go on.
    pub async fn run(&self) -> Result<RestoreReport, RestoreError> {
        self.restorer.run(&self.selection, &self.options).await
    }

    /// What a restore would do, item by item, without asking Graph.
    pub fn plan(
        &self,
    ) -> anyhow::Result<impl Stream<Item = Result<Planned, RestoreError>> + Send + 'static> {
        Ok(self.restorer.plan(&self.selection, &self.options)?)
    }
}

/// [`prepare`] on a blocking thread (it opens the repository), then
/// [`Prepared::check_writes`].
pub async fn prepare_async(
    ws: Arc<Workspace>,
    tenant: TenantOverrides,
    req: RestoreRequest,
    progress: Arc<dyn cairn_restore::Progress>,
) -> anyhow::Result<Prepared> {
    let prepared =
        tokio::task::spawn_blocking(move || prepare(&ws, &tenant, &req, progress)).await??;
    prepared.check_writes().await?;
    Ok(prepared)
}
