//! Logging to stderr, quiet by default. `RELEASECTL_LOG=info|debug` shows more; `app` sets the
//! level once from the settings with [`init`].
//!
//! stdout is reserved for results (manifests, in the plugin), so nothing here writes there.
//! Callers never pass secrets: credentials live in `credentials::Secret`, which has no
//! printable form.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet,
    Info,
    Debug,
}

/// When logging started (the first call), for the elapsed time on debug lines.
fn start() -> std::time::Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

static CONFIG: OnceLock<(Level, Option<String>)> = OnceLock::new();

/// Sets the level and the Argo CD application named on every line; the first call wins.
pub fn init(level: Level, app: Option<String>) {
    start();
    let _ = CONFIG.set((level, app));
}

fn level() -> Level {
    CONFIG.get().map_or(Level::Quiet, |c| c.0)
}

fn emit(tag: &str, message: &str) {
    match CONFIG.get().and_then(|c| c.1.as_deref()) {
        Some(app) => eprintln!(
            "releasectl {tag} app={}: {message}",
            crate::text::excerpt(app)
        ),
        None => eprintln!("releasectl {tag}: {message}"),
    }
}

pub fn info(message: &str) {
    if level() >= Level::Info {
        emit("info", message);
    }
}

/// A debug line, with the milliseconds since logging started (to see where a run's time goes).
pub fn debug(message: &str) {
    if level() >= Level::Debug {
        let ms = start().elapsed().as_secs_f64() * 1000.0;
        emit("debug", &format!("+{ms:.1}ms {message}"));
    }
}
