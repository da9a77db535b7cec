//! The command line, stage two: validated settings every command shares, and the clock.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::archive::Limits;
use crate::cli::Global;
use crate::error::InvalidInput;
use crate::oci::StoreOptions;

/// Default budget for commands other than `generate`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Store options from the global flags.
#[must_use]
pub fn store_options(global: &Global, default_timeout: Duration) -> StoreOptions {
    let mut options = StoreOptions::new(
        global
            .insecure_registries
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        global.ca_file.clone(),
        global.timeout.unwrap_or(default_timeout),
    );
    if let Some(crate::oci::RegistryBase::Registry { host, .. }) = &global.registry {
        options.env_credentials_host = Some(host.clone());
    }
    options
}

fn env_number(name: &str) -> Result<Option<u64>, InvalidInput> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| InvalidInput(format!("{name} is {v:?}: expected a whole number"))),
        Err(_) => Ok(None),
    }
}

/// Who is acting: `--actor`/`RELEASECTL_ACTOR`, else git's `user.email`, else the CI's user
/// variables (GitHub Actions, GitLab CI, Azure Pipelines, Jenkins).
#[must_use]
pub fn actor(global: &Global) -> Option<String> {
    if let Some(a) = global.actor.as_ref().filter(|a| !a.is_empty()) {
        return Some(a.clone());
    }
    if let Ok(email) = git2::Config::open_default().and_then(|c| c.get_string("user.email"))
        && !email.is_empty()
    {
        return Some(email);
    }
    [
        "GITLAB_USER_EMAIL",
        "GITHUB_ACTOR",
        "BUILD_REQUESTEDFOREMAIL",
        "BUILD_USER_EMAIL",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

/// Archive limits, from `RELEASECTL_MAX_TOTAL_BYTES`, `RELEASECTL_MAX_FILES` and
/// `RELEASECTL_MAX_FILE_BYTES` over the defaults.
pub fn limits() -> Result<Limits, InvalidInput> {
    let mut limits = Limits::default();
    if let Some(n) = env_number("RELEASECTL_MAX_TOTAL_BYTES")? {
        limits.max_total_bytes = n;
    }
    if let Some(n) = env_number("RELEASECTL_MAX_FILES")? {
        limits.max_files = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = env_number("RELEASECTL_MAX_FILE_BYTES")? {
        limits.max_file_bytes = n;
    }
    Ok(limits)
}

/// Now, or `RELEASECTL_NOW` (RFC 3339) so that plans are reproducible.
pub fn now() -> Result<OffsetDateTime, InvalidInput> {
    match std::env::var("RELEASECTL_NOW") {
        Ok(v) => OffsetDateTime::parse(&v, &Rfc3339).map_err(|_| {
            InvalidInput(format!(
                "RELEASECTL_NOW is {v:?}: expected an RFC 3339 time"
            ))
        }),
        Err(_) => Ok(OffsetDateTime::now_utc()),
    }
}

/// RFC 3339 in UTC with whole seconds: `2026-11-22T10:30:00Z`.
#[must_use]
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// A release's creation time: `SOURCE_DATE_EPOCH`, else the commit time, else now.
pub fn created_at(committed_at: Option<&str>) -> Result<String, InvalidInput> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs: i64 = v.trim().parse().map_err(|_| {
            InvalidInput(format!(
                "SOURCE_DATE_EPOCH is {v:?}: expected seconds since 1970"
            ))
        })?;
        let t = OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| InvalidInput(format!("SOURCE_DATE_EPOCH {secs} is out of range")))?;
        return Ok(format_time(t));
    }
    if let Some(c) = committed_at {
        let t = OffsetDateTime::parse(c, &Rfc3339).map_err(|_| {
            InvalidInput(format!(
                "--committed-at is {c:?}: expected an RFC 3339 time"
            ))
        })?;
        return Ok(format_time(t));
    }
    Ok(format_time(now()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc_with_whole_seconds() {
        let t = OffsetDateTime::parse("2026-11-22T11:30:00.5+01:00", &Rfc3339).unwrap();
        assert_eq!(format_time(t), "2026-11-22T10:30:00Z");
    }
}
