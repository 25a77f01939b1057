//! Writing the configuration file: `cairn init` records the repository, `cairn tenant
//! add|remove` the tenants, keeping the file's comments and layout.

use crate::{Config, ConfigError, Environment, Result};
use std::path::Path;

/// Changes the configuration file with `edit`, keeping its comments and layout: creates it
/// (and its directory) when absent, refuses a result that would not load, and replaces the
/// file atomically.
pub fn edit_file(
    path: &Path,
    env: &Environment,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<()>,
) -> Result<()> {
    let (text, header) = match std::fs::read_to_string(path) {
        Ok(t) => (t, ""),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            String::new(),
            "# Cairn configuration: every key is described in docs/configuration.md.\n\n",
        ),
        Err(source) => {
            return Err(ConfigError::Read {
                what: "configuration file",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        ConfigError::user(format!(
            "the configuration file {} is not valid TOML: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    edit(&mut doc)?;
    let out = format!("{header}{doc}");
    if let Err(e) = Config::parse(path, &out, env.clone()) {
        return Err(ConfigError::user(format!(
            "the changed configuration would not load: {e}"
        )));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write = |doing, p: &Path, r: std::io::Result<()>| {
        r.map_err(|source| ConfigError::Write {
            doing,
            path: p.to_path_buf(),
            source,
        })
    };
    write("creating", dir, std::fs::create_dir_all(dir))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    write("writing", &tmp, std::fs::write(&tmp, out))?;
    write("replacing", path, std::fs::rename(&tmp, path))?;
    Ok(())
}

/// A path for the configuration file: absolute, as text.
pub fn path_value(p: &Path) -> Result<String> {
    let abs = std::path::absolute(p).map_err(|source| ConfigError::Read {
        what: "path",
        path: p.to_path_buf(),
        source,
    })?;
    abs.to_str().map(str::to_string).ok_or_else(|| {
        ConfigError::user(format!("{} is not valid UTF-8", abs.display()))
            .with_hint("TOML holds only UTF-8 text: move the file to a path that is")
    })
}

/// A repository location as given on the command line, made absolute (local paths against
/// the working directory) so that it can be recorded in the configuration file.
pub fn absolute_location(location: &str) -> Result<String> {
    if location.starts_with("s3:") {
        return Ok(location.to_string());
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    path_value(Path::new(path))
}
