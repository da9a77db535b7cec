//! `sign`: sign an existing release image with a cosign key (docs/format.md §10). The image is
//! read and verified first (every check of docs/format.md §7), so only a valid release is
//! signed, and the signature names the digest that was verified.

use std::io::Write;

use crate::cli::SignArgs;
use crate::release;
use crate::settings::{Output, Settings};

pub async fn run(args: &SignArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let key = crate::cosign::keys::load_private(
        &args.key,
        settings
            .sign_key_password
            .as_ref()
            .map(crate::credentials::Secret::expose),
    )?;
    let (image, expected) = super::resolve_target(&args.target, settings)?;
    let head = release::read(&image, &expected, &settings.store, &settings.limits).await?;
    let digest = head.manifest_digest().clone();
    let id = head.id();
    let store = crate::oci::Store::open_for_write(&image, &settings.store)?;
    let reference = crate::cosign::docker_reference(&image, &id);
    let added = crate::cosign::sign(&store, &image, &digest, &reference, &key).await?;
    let fingerprint = crate::cosign::keys::fingerprint(key.verifying_key());
    let tag = crate::cosign::envelope::tag(&digest);
    let mut out = Vec::new();
    match settings.output {
        Output::Text => writeln!(
            out,
            "{} {image}@{digest} with {fingerprint} ({tag})",
            if added { "signed" } else { "already signed" },
        )?,
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "reference": image.to_string(),
                "digest": digest.to_string(),
                "signature_tag": tag,
                "fingerprint": fingerprint,
                "added": added,
            })
        )?,
    }
    Ok(super::Outcome::ok(out))
}
