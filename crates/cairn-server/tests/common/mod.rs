//! Set-up shared by the server's test binaries.

use std::path::Path;
use std::sync::Arc;

/// The server's state over the configuration file at `config` (repository password `pw`),
/// with its repository created: what `cairn serve` builds at start, without a listener.
pub fn state(config: &Path) -> Arc<cairn_server::State> {
    let env = cairn_config::Environment::from_pairs([("CAIRN_PASSWORD", "pw")]);
    let cfg = cairn_config::Config::load(Some(config), env).unwrap();
    let ws = cairn_app::Workspace::new(cfg, &Default::default())
        .unwrap()
        .serving();
    cairn_repo::Repo::init(ws.repo_options().unwrap()).unwrap();
    cairn_server::State::new(Arc::new(ws)).unwrap()
}
