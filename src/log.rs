//! Logging to stderr, quiet by default. `RELEASECTL_LOG=info|debug` shows more.
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

fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    start();
    *LEVEL.get_or_init(|| match std::env::var("RELEASECTL_LOG").as_deref() {
        Ok("debug" | "trace") => Level::Debug,
        Ok("info") => Level::Info,
        _ => Level::Quiet,
    })
}

fn emit(tag: &str, message: &str) {
    let app = std::env::var("ARGOCD_APP_NAME").ok();
    match app {
        Some(app) => eprintln!("releasectl {tag} app={app}: {message}"),
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
