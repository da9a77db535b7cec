//! Text an attacker controls (image annotations, metadata fields, media types) reaches an error
//! message only escaped and cut short: a newline cannot forge a second `error:` line, an ANSI
//! escape cannot reach the terminal, and megabytes cannot become one line of Argo CD's status.

use serde_json::{Value, json};

use crate::support::cmp::{CmpRun, app_dir};
use crate::support::image::{ImageBuilder, Pointer, REVISION};
use crate::support::{self, Output};

/// The most one error line may hold.
const MAX_LINE: usize = 4096;

type Edit = fn(ImageBuilder) -> ImageBuilder;

fn generate(builder: &ImageBuilder) -> Output {
    let image = builder.build();
    let root = support::temp_dir();
    image.write_layout(root.path());
    let app = app_dir(&[("release.yaml", &Pointer::to(&image).yaml())]);
    CmpRun::new(app.path())
        .env(
            "RELEASECTL_REGISTRY",
            format!("oci:{}", root.path().display()),
        )
        .run()
}

/// Refused with exit 3, nothing on stdout, one escaped line under [`MAX_LINE`] bytes.
#[track_caller]
fn assert_one_safe_line(name: &str, out: &Output) {
    out.assert_exit(3).assert_stdout_empty();
    let err = out.stderr_str();
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{name}: {out}");
    assert!(lines[0].starts_with("error: "), "{name}: {out}");
    assert!(
        !err.contains('\u{1b}') && !err.contains('\r'),
        "{name}: {out}"
    );
    assert!(
        lines[0].len() < MAX_LINE,
        "{name}: {} bytes",
        lines[0].len()
    );
}

const FORGED: &str = "x\nerror: all verified\u{1b}[2K\r";

#[test]
fn a_newline_in_image_text_cannot_forge_a_second_error_line() {
    let cases: [(&str, Edit); 5] = [
        ("revision annotation", |b| {
            b.edit_manifest(|m| m["annotations"][REVISION] = json!(FORGED))
        }),
        ("trigger type", |b| {
            b.edit_metadata(|m| m["trigger"]["type"] = json!(FORGED))
        }),
        ("alias type", |b| {
            b.edit_metadata(|m| m["release"]["aliases"][0]["type"] = json!(FORGED))
        }),
        ("config media type", |b| {
            b.edit_manifest(|m| m["config"]["mediaType"] = json!(FORGED))
        }),
        ("manifest media type", |b| {
            b.edit_manifest(|m| m["mediaType"] = json!(FORGED))
        }),
    ];
    for (name, edit) in cases {
        let out = generate(&edit(ImageBuilder::new()));
        assert_one_safe_line(name, &out);
        assert!(!out.stderr_str().contains("\nerror: all"), "{name}: {out}");
    }
}

#[test]
fn megabytes_of_image_text_give_one_short_line() {
    fn huge() -> Value {
        json!(format!("{}\n", "A".repeat(3 << 20)))
    }
    let cases: [(&str, Edit); 4] = [
        ("config media type", |b| {
            b.edit_manifest(|m| m["config"]["mediaType"] = huge())
        }),
        ("revision annotation", |b| {
            b.edit_manifest(|m| m["annotations"][REVISION] = huge())
        }),
        ("trigger type", |b| {
            b.edit_metadata(|m| m["trigger"]["type"] = huge())
        }),
        ("alias type", |b| {
            b.edit_metadata(|m| m["release"]["aliases"][0]["type"] = huge())
        }),
    ];
    for (name, edit) in cases {
        let out = generate(&edit(ImageBuilder::new()));
        assert_one_safe_line(name, &out);
        assert!(
            out.stderr_str().contains("bytes)"),
            "{name}: cut with its length: {out}"
        );
    }
}
