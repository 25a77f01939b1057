//! A repository, a catalog and a spool in a temporary directory: where an engine under
//! test writes, removed when the test ends.

use cairn_catalog::SqliteCatalog;
use cairn_repo::{Repo, RepoOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fresh repository (`<root>/repo`) and catalog (`<state>/catalog.db`, the state
/// directory being the root unless the builder says otherwise), spool at `<state>/spool`
/// and cache directory at `<root>/cache` (neither created).
pub struct Workspace {
    /// Removes the root when dropped; `None` for a workspace opened by another process.
    _dir: Option<tempfile::TempDir>,
    root: PathBuf,
    state: PathBuf,
    pub repo: Arc<Repo>,
    pub catalog: Arc<SqliteCatalog>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// The repository's password unless the builder says otherwise.
    pub const PASSWORD: &'static str = "pw";

    /// A new workspace in a new temporary directory.
    pub fn new() -> Self {
        Self::builder().init()
    }

    /// The workspace made (and removed in the end) by another process at `root`, such as a
    /// parent test that runs this one as a child to kill it.
    pub fn open(root: &Path) -> Self {
        Self::builder().open(root)
    }

    pub fn builder() -> WorkspaceBuilder {
        WorkspaceBuilder {
            password: Self::PASSWORD.into(),
            state: Box::new(|_| PathBuf::new()),
        }
    }

    /// The root of the temporary directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The repository's location, as `RepoOptions` and `--repo` take it.
    pub fn location(&self) -> String {
        location(&self.root)
    }

    /// Where the catalog and the spool are.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.state.join("catalog.db")
    }

    /// Where a backup engine keeps new content until its restore point is committed.
    pub fn spool_dir(&self) -> PathBuf {
        self.state.join("spool")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
}

fn location(root: &Path) -> String {
    root.join("repo")
        .to_str()
        .expect("a temporary directory with a UTF-8 path")
        .to_string()
}

/// A workspace other than the default: another password, the catalog and spool elsewhere.
pub struct WorkspaceBuilder {
    password: String,
    state: Box<dyn FnOnce(&str) -> PathBuf>,
}

impl WorkspaceBuilder {
    pub fn password(mut self, password: &str) -> Self {
        self.password = password.into();
        self
    }

    /// Where the catalog and spool go, relative to the root, from the repository's location:
    /// for instance where the `cairn` binary looks for them under its cache directory.
    pub fn state_dir(mut self, state: impl FnOnce(&str) -> PathBuf + 'static) -> Self {
        self.state = Box::new(state);
        self
    }

    /// A new repository and catalog in a new temporary directory.
    pub fn init(self) -> Workspace {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().to_path_buf();
        let opts = RepoOptions::new(&location(&root), &self.password).expect("a repository URL");
        let repo = Repo::init(opts).expect("a new repository");
        self.finish(Some(dir), root, repo)
    }

    /// The repository and catalog of an existing workspace at `root`, left in place when
    /// dropped.
    pub fn open(self, root: &Path) -> Workspace {
        let opts = RepoOptions::new(&location(root), &self.password).expect("a repository URL");
        let repo = Repo::open(opts).expect("the workspace's repository");
        self.finish(None, root.to_path_buf(), repo)
    }

    fn finish(self, dir: Option<tempfile::TempDir>, root: PathBuf, repo: Repo) -> Workspace {
        let rel = (self.state)(&location(&root));
        let state = if rel.as_os_str().is_empty() {
            root.clone()
        } else {
            root.join(rel)
        };
        let catalog = SqliteCatalog::open(&state.join("catalog.db")).expect("a catalog");
        Workspace {
            _dir: dir,
            root,
            state,
            repo: Arc::new(repo),
            catalog: Arc::new(catalog),
        }
    }
}
