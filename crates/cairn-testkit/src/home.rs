//! A binary run as a user would run it, but in a home of its own: neither the developer's
//! configuration and cache nor a `CAIRN_*` variable of the shell the tests run in can change
//! what a test sees, and nothing the test does lands in the developer's home.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `HOME` and the XDG directories in a temporary directory, which is also the working
/// directory of the commands.
pub struct Home {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Home {
    /// A home for running `bin`: the binary's path is known only to its own crate's tests
    /// (`env!("CARGO_BIN_EXE_cairn")`).
    pub fn new(bin: impl AsRef<Path>) -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            bin: bin.as_ref().to_path_buf(),
        }
    }

    /// A path in the home's temporary directory (`""`: the directory itself).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Where the configuration file is when no `--config` is given.
    pub fn config(&self) -> PathBuf {
        self.path("xdg-config/cairn/config.toml")
    }

    /// The binary with the home's environment, no `CAIRN_*` variable, no stdin.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_CACHE_HOME", self.path("xdg-cache"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// Runs the binary with `args` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("the binary runs")
    }

    /// Writes `text` to `rel` in the home's directory, creating directories; its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("a file, not the root"))
            .expect("the file's directory");
        std::fs::write(&p, text).expect("the file is written");
        p
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded, showing what it printed if not.
#[track_caller]
pub fn ok(o: &Output) {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
}
