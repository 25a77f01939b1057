//! The progress bar every long command draws on stderr when it is a terminal (and hides
//! otherwise), so that they all look and behave alike.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar (`len` known) or spinner drawn with `template`; hidden when `terminal` is false.
pub fn bar(terminal: bool, len: Option<u64>, template: &str) -> ProgressBar {
    let bar = if terminal {
        ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let fallback = if len.is_some() {
        ProgressStyle::default_bar()
    } else {
        ProgressStyle::default_spinner()
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or(fallback));
    bar
}
