//! `version`: what this binary is, for bug reports and for scripts (`-o json`).

use std::io::Write;

use serde::Serialize;

use crate::exit::Result;
use crate::settings::{Output, Settings};

#[derive(Serialize)]
#[allow(clippy::struct_field_names)] // the JSON keys scripts read
struct Version {
    version: &'static str,
    commit: &'static str,
    build_date: &'static str,
    rustc: &'static str,
}

pub fn run(settings: &Settings) -> Result<super::Outcome> {
    let v = Version {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("RELEASECTL_GIT_COMMIT"),
        build_date: env!("RELEASECTL_BUILD_DATE"),
        rustc: env!("RELEASECTL_RUSTC"),
    };
    let mut out = Vec::new();
    match settings.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?,
        Output::Text => {
            writeln!(out, "releasectl {}", v.version)?;
            writeln!(out, "commit:     {}", v.commit)?;
            writeln!(out, "built:      {}", v.build_date)?;
            writeln!(out, "rustc:      {}", v.rustc)?;
        }
    }
    Ok(super::Outcome::ok(out))
}
