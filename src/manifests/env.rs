//! The environment's objects (`env.yaml`): which kinds it may hold, and how an object is named
//! in a message. `generate` and `check` apply the same rules.

use super::{Object, ObjectName};

/// `group/Kind` of an object, `Kind` for the core group (`apiVersion: v1`).
#[must_use]
pub fn group_kind(api_version: &str, kind: &str) -> String {
    match api_version.rsplit_once('/') {
        Some((group, _)) => format!("{group}/{kind}"),
        None => kind.to_owned(),
    }
}

/// How an object is named in a message: `group/Kind namespace/name`, escaped.
#[must_use]
pub fn describe(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &ObjectName,
) -> String {
    let name = match name {
        ObjectName::Name(n) => n.clone(),
        ObjectName::GenerateName(n) => format!("{n}*"),
    };
    crate::text::excerpt(&format!(
        "{} {}{name}",
        group_kind(api_version, kind),
        namespace.map(|n| format!("{n}/")).unwrap_or_default()
    ))
}

/// The environment's objects may only be of the kinds the sidecar's operator allows
/// (`RELEASECTL_ENV_KINDS`): an `env.yaml` carries values, never workloads or RBAC.
///
/// # Errors
///
/// The first object of another kind, naming it and the allowed kinds.
pub fn check_env_kinds(objects: &[Object], allowed: &[String]) -> Result<(), String> {
    for o in objects {
        let gk = group_kind(&o.api_version, &o.kind);
        if !allowed.contains(&gk) {
            return Err(format!(
                "{}: {} is of kind {}: expected one of {} (RELEASECTL_ENV_KINDS)",
                o.source,
                describe(&o.api_version, &o.kind, o.namespace.as_deref(), &o.name),
                crate::text::excerpt(&gk),
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}
