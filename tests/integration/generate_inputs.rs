//! `releasectl generate` on bad input (docs/design.md §5 rules 1–3): every case must exit non-zero
//! (2 for a bad pointer or application directory, 3 for a bad image or archive), print nothing
//! at all on stdout, and say on one stderr line which object is wrong.
//!
//! Images are built by `support::image`, independently of the product, each breaking exactly
//! one thing with every other digest right: an archive case is refused by the archive reader,
//! not by a digest check. Most cases use an OCI layout (`RELEASECTL_REGISTRY=oci:…`, fast);
//! a few go through a real registry, where bytes arrive over HTTP.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cmp::{CmpRun, app_dir, fixture_app, fixture_registry};
use crate::support::image::{
    COMMIT, CONFIGMAP_YAML, INDEX_MEDIA_TYPE, Image, ImageBuilder, MANIFEST_MEDIA_TYPE,
    METADATA_MEDIA_TYPE, OTHER_COMMIT, Part, Pointer, RESOURCES_MEDIA_TYPE, REVISION, SERVICE_YAML,
    Tar, descriptor, digest, gzip, gzip_zeros, pax_records, put_manifest, tar_header, typeflag,
};
use crate::support::{self, Mode, Output, Registry, each_case};

/// Every image-level message must say which release it is about.
const IMAGE_PATH: &str = "company/monorepo/auth-service";

/// The common contract of a refusal: the exit code, nothing on stdout, one line on stderr that
/// holds every needle.
#[track_caller]
fn assert_refused(out: &Output, code: i32, needles: &[&str]) {
    out.assert_exit(code).assert_stdout_empty();
    let err = out.stderr_str();
    let lines: Vec<&str> = err.trim_end().lines().collect();
    if lines.len() != 1 {
        out.fail("expected exactly one line on stderr");
    }
    let missing: Vec<&&str> = needles.iter().filter(|n| !err.contains(**n)).collect();
    if !missing.is_empty() {
        out.fail(&format!("stderr was expected to contain {missing:?}"));
    }
}

/// An image problem: exit 3, the release named, and `needles`.
#[track_caller]
fn assert_image_refused(out: &Output, needles: &[&str]) {
    let mut all = vec![IMAGE_PATH];
    all.extend_from_slice(needles);
    assert_refused(out, 3, &all);
}

fn oci(root: &Path) -> String {
    format!("oci:{}", root.display())
}

/// Writes `image` into a fresh layout root and runs generate on a pointer pinned to it.
fn generate_layout(image: &Image) -> Output {
    generate_layout_with(image, &[])
}

fn generate_layout_with(image: &Image, env: &[(&str, &str)]) -> Output {
    let root = support::temp_dir();
    image.write_layout(root.path());
    run_pointer(&Pointer::to(image).yaml(), root.path(), env)
}

fn run_pointer(pointer: &str, root: &Path, env: &[(&str, &str)]) -> Output {
    let app = app_dir(&[("release.yaml", pointer)]);
    let mut run = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(root))
        .timeout(Duration::from_secs(30));
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run()
}

/// A release whose resources layer is `tar` gzipped, every digest right.
fn archive(tar: &[u8]) -> Output {
    generate_layout(&ImageBuilder::new().resources(gzip(tar)).build())
}

fn set_layer(manifest: &mut Value, index: usize, field: &str, value: Value) {
    manifest["layers"][index][field] = value;
}

// ---- the pointer (exit 2) -------------------------------------------------------------------

/// The fixture pointer, valid, pinned to the fixture release.
fn fixture_pointer() -> String {
    std::fs::read_to_string(fixture_app().join("release.yaml")).expect("fixture pointer")
}

fn generate_pointer(pointer: &str) -> Output {
    run_pointer(pointer, &fixture_registry(), &[])
}

#[test]
fn generate_refuses_a_missing_pointer() {
    let app = app_dir(&[]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(&fixture_registry()))
        .run();
    assert_refused(&out, 2, &["release.yaml", "not found"]);
}

#[test]
fn generate_accepts_the_unmodified_fixture_pointer() {
    // The baseline every pointer case below changes one thing of.
    let out = generate_pointer(&fixture_pointer());
    out.assert_success();
    assert!(!out.stdout.is_empty());
}

#[test]
fn generate_refuses_a_pointer_that_is_not_yaml() {
    let out = generate_pointer("apiVersion: [releasectl.dev/v1alpha1\nkind: {\n");
    assert_refused(&out, 2, &["release.yaml", "not valid YAML"]);
}

#[test]
fn generate_refuses_a_pointer_that_is_not_utf8() {
    let app = app_dir(&[]);
    std::fs::write(app.path().join("release.yaml"), b"kind: \xff\xfe\n").unwrap();
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(&fixture_registry()))
        .run();
    assert_refused(&out, 2, &["release.yaml", "UTF-8"]);
}

#[test]
fn generate_refuses_an_empty_pointer_and_two_pointers_in_one_file() {
    let out = generate_pointer("");
    assert_refused(&out, 2, &["release.yaml", "found 0"]);
    let two = format!("{p}---\n{p}", p = fixture_pointer());
    let out = generate_pointer(&two);
    assert_refused(&out, 2, &["release.yaml", "found 2"]);
}

#[test]
fn generate_refuses_a_pointer_of_the_wrong_kind() {
    let out = generate_pointer(
        &fixture_pointer().replace("kind: ReleasePointer", "kind: ReleasePointers"),
    );
    assert_refused(&out, 2, &["release.yaml", "kind", "ReleasePointers"]);
}

#[test]
fn generate_refuses_a_pointer_with_the_wrong_api_version() {
    let out = generate_pointer(&fixture_pointer().replace("v1alpha1", "v1"));
    assert_refused(
        &out,
        2,
        &[
            "release.yaml",
            "apiVersion",
            "releasectl.dev/v1",
            "releasectl.dev/v1alpha1",
        ],
    );
}

#[test]
fn generate_refuses_a_pointer_with_a_bad_commit_sha() {
    for bad in [
        "main",
        "0123456789abcdef0123456789abcdef0123456",   // 39
        "0123456789ABCDEF0123456789ABCDEF01234567",  // upper case
        "0123456789abcdef0123456789abcdef012345678", // 41
        "g123456789abcdef0123456789abcdef01234567",
    ] {
        let out = generate_pointer(&fixture_pointer().replace(COMMIT, bad));
        assert_refused(&out, 2, &["release.yaml", "spec.release", bad]);
    }
}

#[test]
fn generate_refuses_a_pointer_with_a_bad_digest() {
    let good = fixture_pointer();
    let line = good
        .lines()
        .find(|l| l.trim_start().starts_with("digest:"))
        .expect("pinned fixture");
    let hex = line.trim().trim_start_matches("digest: sha256:");
    for bad in [
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha512:{hex}{hex}"),
        hex.to_owned(),
        "sha256:zzzz".to_owned(),
    ] {
        let out = generate_pointer(&good.replace(line, &format!("  digest: {bad}")));
        assert_refused(&out, 2, &["release.yaml", "spec.digest", &bad]);
    }
}

#[test]
fn generate_refuses_a_pointer_with_an_unknown_field() {
    let good = fixture_pointer();
    let out = generate_pointer(&good.replace(
        "  project: auth-service\n",
        "  project: auth-service\n  registyr: registry.example.com\n",
    ));
    assert_refused(&out, 2, &["release.yaml", "spec.registyr"]);
    let out = generate_pointer(&format!("{good}status:\n  synced: true\n"));
    assert_refused(&out, 2, &["release.yaml", "status"]);
}

#[test]
fn generate_refuses_a_pointer_missing_a_required_field() {
    let out = generate_pointer(&fixture_pointer().replace("  project: auth-service\n", ""));
    assert_refused(&out, 2, &["release.yaml", "spec.project"]);
}

#[test]
fn generate_refuses_a_yaml_alias_bomb_in_the_pointer_within_a_few_seconds() {
    let mut anchors = String::from(
        "    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut previous = "a";
    for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
        let refs = vec![format!("*{previous}"); 9].join(",");
        let _ = writeln!(anchors, "    {name}: &{name} [{refs}]");
        previous = name;
    }
    let bomb = fixture_pointer().replace("  annotations:\n", &format!("  annotations:\n{anchors}"));
    assert!(bomb.len() < 4096, "the bomb is small: {} bytes", bomb.len());

    let started = Instant::now();
    let app = app_dir(&[("release.yaml", &bomb)]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", oci(&fixture_registry()))
        .timeout(Duration::from_secs(20))
        .grace(Duration::from_secs(1))
        .run();
    let elapsed = started.elapsed();
    assert_refused(&out, 2, &["release.yaml", "alias"]);
    assert!(
        elapsed < Duration::from_secs(3),
        "took {elapsed:?}: an alias bomb must fail fast\n{out}"
    );
}

#[test]
fn generate_refuses_an_oversized_pointer() {
    let big = format!("{}# {}\n", fixture_pointer(), "x".repeat(100 * 1024));
    let out = generate_pointer(&big);
    assert_refused(&out, 2, &["release.yaml", "too large"]);
}

#[test]
fn generate_refuses_an_env_yaml_that_is_not_a_kubernetes_object() {
    for (env, needle) in [
        ("apiVersion: v1\nmetadata:\n  name: x\n", "kind"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "metadata.name",
        ),
        ("a: [\n", "env.yaml"),
    ] {
        let app = app_dir(&[("release.yaml", &fixture_pointer()), ("env.yaml", env)]);
        let out = CmpRun::new(app.path())
            .env("RELEASECTL_REGISTRY", oci(&fixture_registry()))
            .run();
        assert_refused(&out, 2, &["env.yaml", needle]);
    }
}

// ---- the image (exit 3): digests, sizes ----------------------------------------------------

#[test]
fn generate_accepts_the_unmodified_test_image() {
    // The baseline every image case below changes one thing of.
    let out = generate_layout(&ImageBuilder::new().build());
    out.assert_success();
    assert!(out.stdout_str().contains("kind: Service"), "{out}");
}

/// Replaces the first occurrence of `from` with `to` (same length) in a blob.
fn replace_bytes(from: &'static [u8], to: &'static [u8]) -> impl Fn(&mut Vec<u8>) {
    assert_eq!(from.len(), to.len());
    move |bytes: &mut Vec<u8>| {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern in blob");
        bytes[at..at + to.len()].copy_from_slice(to);
    }
}

#[test]
fn generate_refuses_a_manifest_whose_bytes_do_not_match_the_pinned_digest() {
    let image = ImageBuilder::new()
        .tamper(Part::Manifest, replace_bytes(b"2026-11-22", b"2027-11-22"))
        .build();
    let out = generate_layout(&image);
    assert_image_refused(&out, &["digest mismatch", &image.manifest_digest]);
}

#[test]
fn generate_refuses_a_metadata_blob_whose_bytes_do_not_match_its_digest() {
    let image = ImageBuilder::new()
        .tamper(
            Part::Metadata,
            replace_bytes(b"ci@example.com", b"ci@evil.com!!!"),
        )
        .build();
    assert_image_refused(
        &generate_layout(&image),
        &["metadata blob", "digest mismatch", &digest(&image.metadata)],
    );
}

#[test]
fn generate_refuses_a_config_blob_whose_bytes_do_not_match_its_digest() {
    let image = ImageBuilder::new()
        .tamper(Part::Config, |b| b[0] = b' ')
        .build();
    assert_image_refused(
        &generate_layout(&image),
        &["config blob", "digest mismatch", &digest(&image.config)],
    );
}

#[test]
fn generate_refuses_a_resources_blob_whose_bytes_do_not_match_its_digest() {
    let image = ImageBuilder::new()
        .tamper(Part::Resources, |b| {
            let last = b.len() - 1;
            b[last] ^= 0xff;
        })
        .build();
    assert_image_refused(
        &generate_layout(&image),
        &[
            "resources blob",
            "digest mismatch",
            &digest(&image.resources),
        ],
    );
}

/// An input (a release image, a resources archive) `generate` must refuse, and what the
/// refusal must say; a failing case is reported by its name.
struct Refused<T> {
    name: &'static str,
    needles: &'static [&'static str],
    input: T,
}

/// What a refused image is made of: the default image, edited.
type ImageEdit = fn(ImageBuilder) -> ImageBuilder;
/// What a refused archive is: a tar stream.
type MakeTar = fn() -> Vec<u8>;

fn refused<T>(name: &'static str, needles: &'static [&'static str], input: T) -> Refused<T> {
    Refused {
        name,
        needles,
        input,
    }
}

impl<T> std::fmt::Debug for Refused<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[test]
fn generate_refuses_malformed_images_naming_what_is_wrong() {
    let cases: [Refused<ImageEdit>; 22] = [
        refused(
            "a_truncated_resources_blob",
            &["resources blob", "truncated"],
            |b| b.tamper(Part::Resources, |b| b.truncate(b.len() - 10)),
        ),
        // Declared one byte larger (and the metadata agrees, so only the download can tell).
        refused(
            "a_descriptor_that_overstates_a_blobs_size",
            &["resources blob", "truncated"],
            |b| {
                b.edit_manifest(|m| {
                    let size = m["layers"][1]["size"].as_u64().unwrap();
                    m["layers"][1]["size"] = json!(size + 1);
                })
                .edit_metadata(|m| {
                    let size = m["resources"]["layer_size"].as_u64().unwrap();
                    m["resources"]["layer_size"] = json!(size + 1);
                })
            },
        ),
        refused(
            "a_manifest_with_a_foreign_media_type",
            &[
                "media type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            ],
            |b| {
                b.edit_manifest(|m| {
                    m["mediaType"] =
                        json!("application/vnd.docker.distribution.manifest.v1+prettyjws");
                })
            },
        ),
        refused(
            "a_manifest_with_schema_version_1",
            &["schemaVersion"],
            |b| b.edit_manifest(|m| m["schemaVersion"] = json!(1)),
        ),
        refused(
            "a_manifest_that_is_not_json",
            &["not a valid image manifest"],
            |b| b.manifest_bytes(b"<html>not a manifest</html>".to_vec()),
        ),
        refused(
            "a_config_of_the_wrong_media_type",
            &[
                "config media type",
                "application/vnd.oci.image.config.v1+json",
            ],
            |b| {
                b.edit_manifest(|m| {
                    m["config"]["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
                })
            },
        ),
        refused(
            "a_metadata_layer_of_the_wrong_media_type",
            &["0 layers", METADATA_MEDIA_TYPE],
            |b| b.edit_manifest(|m| set_layer(m, 0, "mediaType", json!("application/json"))),
        ),
        refused(
            "a_resources_layer_of_the_wrong_media_type",
            &["0 layers", RESOURCES_MEDIA_TYPE],
            |b| {
                b.edit_manifest(|m| {
                    set_layer(
                        m,
                        1,
                        "mediaType",
                        json!("application/vnd.oci.image.layer.v1.tar+gzip"),
                    );
                })
            },
        ),
        refused(
            "a_missing_resources_layer",
            &["0 layers", RESOURCES_MEDIA_TYPE],
            |b| {
                b.edit_manifest(|m| {
                    m["layers"].as_array_mut().unwrap().pop();
                })
            },
        ),
        refused(
            "the_same_metadata_layer_listed_twice",
            &["2 layers", METADATA_MEDIA_TYPE],
            |b| {
                b.edit_manifest(|m| {
                    let first = m["layers"][0].clone();
                    m["layers"].as_array_mut().unwrap().push(first);
                })
            },
        ),
        refused(
            "a_layer_with_foreign_urls",
            &["foreign urls", "evil.example.com"],
            |b| {
                b.edit_manifest(|m| {
                    set_layer(m, 1, "urls", json!(["https://evil.example.com/blob"]));
                })
            },
        ),
        refused("a_descriptor_with_a_non_sha256_digest", &["sha512:"], |b| {
            b.edit_manifest(|m| {
                let hex = m["layers"][1]["digest"].as_str().unwrap()[7..].to_owned();
                set_layer(m, 1, "digest", json!(format!("sha512:{hex}{hex}")));
            })
        }),
        refused(
            "a_revision_annotation_that_is_not_the_commit",
            &["revision", OTHER_COMMIT, COMMIT],
            |b| b.edit_manifest(|m| m["annotations"][REVISION] = json!(OTHER_COMMIT)),
        ),
        refused(
            "a_manifest_without_a_revision_annotation",
            &[REVISION],
            |b| {
                b.edit_manifest(|m| {
                    m["annotations"].as_object_mut().unwrap().remove(REVISION);
                })
            },
        ),
        refused(
            "a_release_of_another_project_stored_under_this_one",
            &["project", "billing-service"],
            |b| {
                b.edit_config(|c| c["project"] = json!("billing-service"))
                    .edit_metadata(|m| m["release"]["project"] = json!("billing-service"))
            },
        ),
        refused(
            "a_config_that_names_another_commit",
            &["config", OTHER_COMMIT],
            |b| b.edit_config(|c| c["commit"] = json!(OTHER_COMMIT)),
        ),
        refused(
            "metadata_that_names_another_commit",
            &["release.commit", OTHER_COMMIT],
            |b| b.edit_metadata(|m| m["release"]["commit"] = json!(OTHER_COMMIT)),
        ),
        refused("an_unknown_format_version", &["format_version"], |b| {
            b.edit_config(|c| c["format_version"] = json!(2))
        }),
        refused("metadata_that_is_not_json", &["metadata"], |b| {
            b.edit_manifest(|m| {
                let junk = b"not json";
                m["layers"][0] = descriptor(METADATA_MEDIA_TYPE, junk);
            })
            .extra_blob(b"not json".to_vec())
        }),
        refused("a_document_without_kind", &["broken.yaml", "kind"], |b| {
            b.file("broken.yaml", "apiVersion: v1\nmetadata:\n  name: x\n")
        }),
        refused(
            "a_release_with_no_objects",
            &["no Kubernetes objects"],
            |b| b.file("empty.yaml", "# nothing here\n---\n---\n"),
        ),
        refused(
            "a_json_manifest_with_something_after_the_object",
            &["two.json"],
            |b| {
                b.file(
                    "two.json",
                    concat!(
                        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}} "#,
                        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}"#,
                    ),
                )
            },
        ),
    ];
    each_case(&cases, |case| {
        let image = (case.input)(ImageBuilder::new()).build();
        assert_image_refused(&generate_layout(&image), case.needles);
    });
}

#[test]
fn generate_refuses_an_overlong_metadata_blob() {
    let image = ImageBuilder::new()
        .tamper(Part::Metadata, |b| b.extend_from_slice(b"  "))
        .build();
    // The message names the declared size (the layout says "over the limit", a registry
    // "longer than its descriptor says").
    let declared = image.metadata.len().to_string();
    assert_image_refused(&generate_layout(&image), &["metadata blob", &declared]);
}

#[test]
fn generate_refuses_a_descriptor_that_understates_a_blobs_size() {
    // The digest is right; the declared size is one byte short.
    let image = ImageBuilder::new()
        .edit_manifest(|m| {
            let size = m["layers"][0]["size"].as_u64().unwrap();
            m["layers"][0]["size"] = json!(size - 1);
        })
        .build();
    let declared = (image.metadata.len() - 1).to_string();
    assert_image_refused(&generate_layout(&image), &["metadata blob", &declared]);
}

#[test]
fn generate_refuses_an_absurd_declared_size_before_downloading_anything() {
    const TERABYTE: u64 = 1_000_000_000_000;
    for layer in [0usize, 1] {
        let image = ImageBuilder::new()
            .edit_manifest(move |m| m["layers"][layer]["size"] = json!(TERABYTE))
            .edit_metadata(|m| m["resources"]["layer_size"] = json!(TERABYTE))
            .build();
        let root = support::temp_dir();
        let dir = image.write_layout(root.path());
        // Without its blobs: had generate tried to read one, it would say "not found".
        for blob in [&image.metadata, &image.resources, &image.config] {
            let d = digest(blob);
            std::fs::remove_file(dir.join("blobs/sha256").join(&d[7..])).unwrap();
        }
        let out = run_pointer(&Pointer::to(&image).yaml(), root.path(), &[]);
        let blob = if layer == 0 { "metadata" } else { "resources" };
        assert_image_refused(&out, &[blob, "declares size 1000000000000"]);
    }
}

#[test]
fn generate_refuses_an_oversized_manifest() {
    let mut manifest: Value =
        serde_json::from_slice(&ImageBuilder::new().build().manifest).unwrap();
    manifest["annotations"]["padding"] = json!("x".repeat(5 * 1024 * 1024));
    let image = ImageBuilder::new()
        .manifest_bytes(serde_json::to_vec(&manifest).unwrap())
        .build();
    let out = generate_layout(&image);
    assert_image_refused(&out, &["manifest", "limit of 4194304"]);
}

// ---- the image (exit 3): structure ----------------------------------------------------------

/// A layout whose pinned "manifest" is an image index over a valid release manifest.
fn index_image(entry_media_type: Option<&str>, index_media_type_field: bool) -> Image {
    let inner = ImageBuilder::new().build();
    let mut index: Value = serde_json::from_slice(&inner.index()).unwrap();
    if !index_media_type_field {
        index.as_object_mut().unwrap().remove("mediaType");
    }
    let mut image = ImageBuilder::new()
        .manifest_bytes(serde_json::to_vec(&index).unwrap())
        .extra_blob(inner.manifest.clone())
        .build();
    if let Some(t) = entry_media_type {
        t.clone_into(&mut image.manifest_media_type);
    }
    image
}

#[test]
fn generate_refuses_an_image_index_instead_of_a_manifest() {
    // As the layout's index.json declares it.
    let out = generate_layout(&index_image(Some(INDEX_MEDIA_TYPE), true));
    assert_image_refused(&out, &["image index"]);
    // Declared a manifest by index.json, but an index by its own mediaType.
    let out = generate_layout(&index_image(Some(MANIFEST_MEDIA_TYPE), true));
    assert_image_refused(&out, &["image index"]);
    // No mediaType field at all: still an index by its shape.
    let out = generate_layout(&index_image(Some(MANIFEST_MEDIA_TYPE), false));
    assert_image_refused(&out, &["image index"]);
}

#[test]
fn generate_refuses_two_resources_layers() {
    let other = gzip(&Tar::new().file("other.yaml", CONFIGMAP_YAML).finish());
    let extra = descriptor(RESOURCES_MEDIA_TYPE, &other);
    let image = ImageBuilder::new()
        .extra_blob(other)
        .edit_manifest(move |m| m["layers"].as_array_mut().unwrap().push(extra.clone()))
        .build();
    assert_image_refused(
        &generate_layout(&image),
        &["2 layers", RESOURCES_MEDIA_TYPE],
    );
}

#[test]
fn generate_ignores_an_unknown_extra_layer() {
    // Signatures and SBOMs ride along as extra layers (docs/format.md): not an error.
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec();
    let extra = descriptor("application/spdx+json", &sbom);
    let image = ImageBuilder::new()
        .extra_blob(sbom)
        .edit_manifest(move |m| m["layers"].as_array_mut().unwrap().push(extra.clone()))
        .build();
    let out = generate_layout(&image);
    out.assert_success();
    assert!(out.stdout_str().contains("kind: ConfigMap"), "{out}");
}

#[test]
fn generate_ignores_unknown_metadata_fields() {
    let image = ImageBuilder::new()
        .edit_metadata(|m| {
            m["provenance"] = json!({"builder": "ci"});
            m["release"]["channel"] = json!("stable");
        })
        .build();
    generate_layout(&image).assert_success();
}

#[test]
fn generate_refuses_a_pinned_release_of_another_commit_than_the_pointer_names() {
    // A consistent release of OTHER_COMMIT, pinned by a pointer that says COMMIT.
    let image = ImageBuilder::new().commit(OTHER_COMMIT).build();
    let root = support::temp_dir();
    image.write_layout_tagged(root.path(), COMMIT);
    let pointer = Pointer::to(&image);
    let pointer = Pointer {
        release: COMMIT.to_owned(),
        ..pointer
    };
    let out = run_pointer(&pointer.yaml(), root.path(), &[]);
    assert_image_refused(&out, &["revision", OTHER_COMMIT, COMMIT]);
}

#[test]
fn generate_refuses_metadata_that_names_another_resources_digest() {
    let other = digest(b"another resources layer");
    let recorded = other.clone();
    let image = ImageBuilder::new()
        .edit_metadata(move |m| m["resources"]["layer_digest"] = json!(recorded))
        .build();
    assert_image_refused(
        &generate_layout(&image),
        &["resources.layer_digest", &other, &digest(&image.resources)],
    );
}

#[test]
fn generate_refuses_a_resources_layer_that_disagrees_with_the_metadata_file_list() {
    // The layer holds one more file than the metadata records.
    let tar = Tar::new()
        .file("configmap.yaml", CONFIGMAP_YAML)
        .file("extra.yaml", CONFIGMAP_YAML.replace("settings", "smuggled"))
        .file("service.yaml", SERVICE_YAML)
        .finish();
    let out = generate_layout(&ImageBuilder::new().resources(gzip(&tar)).build());
    assert_image_refused(&out, &["3 files", "2"]);
    // Same paths, one file's contents differ from its recorded sha256.
    let tar = Tar::new()
        .file("configmap.yaml", CONFIGMAP_YAML.replace("fast", "slow"))
        .file("service.yaml", SERVICE_YAML)
        .finish();
    let out = generate_layout(&ImageBuilder::new().resources(gzip(&tar)).build());
    assert_image_refused(&out, &["configmap.yaml", "sha256"]);
}

// ---- the archive (exit 3) --------------------------------------------------------------------

fn ok_file(tar: Tar) -> Tar {
    tar.file("configmap.yaml", CONFIGMAP_YAML)
}

#[test]
fn generate_refuses_hostile_archives_naming_the_entry() {
    let cases: [Refused<MakeTar>; 23] = [
        refused(
            "an_archive_path_with_a_parent_component",
            &["\"../x.yaml\"", ".."],
            || {
                ok_file(Tar::new())
                    .file("../x.yaml", CONFIGMAP_YAML)
                    .finish()
            },
        ),
        refused(
            "an_archive_path_that_climbs_out_through_a_subdirectory",
            &["a/../../x.yaml"],
            || Tar::new().file("a/../../x.yaml", CONFIGMAP_YAML).finish(),
        ),
        refused(
            "an_absolute_archive_path",
            &["/etc/passwd", "absolute"],
            || {
                Tar::new()
                    .file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
                    .finish()
            },
        ),
        refused(
            "an_archive_entry_with_an_empty_name",
            &["empty path"],
            || ok_file(Tar::new()).file("", CONFIGMAP_YAML).finish(),
        ),
        refused("an_archive_entry_with_a_non_utf8_name", &["UTF-8"], || {
            Tar::new().file(b"caf\xe9.yaml", CONFIGMAP_YAML).finish()
        }),
        refused(
            "a_symlink_in_the_archive",
            &["link.yaml", "symlink", "/etc/passwd"],
            || {
                ok_file(Tar::new())
                    .symlink("link.yaml", "/etc/passwd")
                    .finish()
            },
        ),
        refused(
            "a_hardlink_in_the_archive",
            &["twin.yaml", "hard link"],
            || {
                ok_file(Tar::new())
                    .hardlink("twin.yaml", "configmap.yaml")
                    .finish()
            },
        ),
        // The classic extraction escape: `d -> /etc`, then `d/x.yaml` lands in /etc.
        refused(
            "a_symlink_followed_by_a_file_through_it",
            &["\"d\"", "symlink"],
            || {
                Tar::new()
                    .symlink("d", "/etc")
                    .file("d/x.yaml", CONFIGMAP_YAML)
                    .finish()
            },
        ),
        refused("a_fifo_in_the_archive", &["pipe.yaml", "FIFO"], || {
            ok_file(Tar::new())
                .special("pipe.yaml", typeflag::FIFO)
                .finish()
        }),
        refused(
            "an_unknown_entry_type_in_the_archive",
            &["odd.yaml"],
            || ok_file(Tar::new()).special("odd.yaml", b'Z').finish(),
        ),
        refused(
            "a_duplicate_archive_path",
            &["configmap.yaml", "more than once"],
            || {
                ok_file(Tar::new())
                    .file("configmap.yaml", CONFIGMAP_YAML.replace("fast", "slow"))
                    .finish()
            },
        ),
        refused(
            "a_duplicate_archive_path_spelled_with_a_dot_prefix",
            &["./configmap.yaml", "more than once"],
            || {
                ok_file(Tar::new())
                    .file("./configmap.yaml", CONFIGMAP_YAML.replace("fast", "slow"))
                    .finish()
            },
        ),
        refused(
            "a_file_that_another_entry_uses_as_a_directory",
            &["configmap.yaml/inner.yaml"],
            || {
                ok_file(Tar::new())
                    .file("configmap.yaml/inner.yaml", CONFIGMAP_YAML)
                    .finish()
            },
        ),
        // tar-rs obeys the PAX size, GNU tar the header: two readers, two different files.
        refused(
            "a_pax_size_that_differs_from_the_header_size",
            &["configmap.yaml", "PAX size"],
            || {
                Tar::new()
                    .pax(&[("size", b"5")])
                    .file("configmap.yaml", CONFIGMAP_YAML)
                    .finish()
            },
        ),
        refused(
            "a_pax_path_with_a_parent_component",
            &["../escape.yaml"],
            || {
                Tar::new()
                    .pax(&[("path", b"../escape.yaml")])
                    .file("configmap.yaml", CONFIGMAP_YAML)
                    .finish()
            },
        ),
        refused(
            "a_tar_stream_without_its_end_of_archive_marker",
            &["end-of-archive"],
            || ok_file(Tar::new()).finish_without_end(),
        ),
        refused(
            "a_file_that_is_not_a_manifest",
            &["README.md", "not a manifest"],
            || ok_file(Tar::new()).file("README.md", "# hello\n").finish(),
        ),
        refused(
            "a_parent_component_that_stays_inside",
            &["a/../b.yaml"],
            || {
                ok_file(Tar::new())
                    .file("a/../b.yaml", CONFIGMAP_YAML)
                    .finish()
            },
        ),
        refused("a_regular_file_named_dot", &["empty path"], || {
            ok_file(Tar::new()).file(".", CONFIGMAP_YAML).finish()
        }),
        refused("a_nul_byte_in_a_pax_path", &["NUL"], || {
            Tar::new()
                .pax(&[("path", b"a\0b.yaml")])
                .file("configmap.yaml", CONFIGMAP_YAML)
                .finish()
        }),
        refused(
            "a_directory_entry_that_names_a_file",
            &["configmap.yaml"],
            || ok_file(Tar::new()).dir("configmap.yaml/").finish(),
        ),
        refused("a_contiguous_file_entry", &["cont.yaml"], || {
            ok_file(Tar::new()).special("cont.yaml", b'7').finish()
        }),
        refused("a_pax_global_header", &["pax_global_header"], || {
            Tar::new()
                .entry(
                    b"pax_global_header",
                    typeflag::PAX_GLOBAL,
                    b"",
                    &pax_records(&[("comment", b"abc")]),
                )
                .file("configmap.yaml", CONFIGMAP_YAML)
                .finish()
        }),
    ];
    each_case(&cases, |case| {
        assert_image_refused(&archive(&(case.input)()), case.needles);
    });
}

#[test]
fn generate_refuses_backslash_archive_paths() {
    for name in ["..\\x.yaml", "a\\b.yaml", "C:\\x.yaml"] {
        let out = archive(&Tar::new().file(name, CONFIGMAP_YAML).finish());
        assert_image_refused(&out, &["backslash"]);
    }
}

#[test]
fn generate_refuses_device_entries_in_the_archive() {
    for (flag, needle) in [
        (typeflag::CHAR, "character device"),
        (typeflag::BLOCK, "block device"),
    ] {
        let out = archive(&ok_file(Tar::new()).special("dev.yaml", flag).finish());
        assert_image_refused(&out, &["dev.yaml", needle]);
    }
}

#[test]
fn generate_refuses_data_after_the_tar_end_of_archive_marker() {
    let mut tar = ok_file(Tar::new()).finish();
    // What `tar --ignore-zeros` would go on to read.
    tar.extend_from_slice(&tar_header(
        b"hidden.yaml",
        0o644,
        0,
        typeflag::REGULAR,
        b"",
    ));
    tar.extend_from_slice(&[0u8; 1024]);
    let out = archive(&tar);
    assert_image_refused(&out, &["after the end-of-archive marker"]);
}

#[test]
fn generate_refuses_an_entry_whose_data_is_cut_short() {
    let tar = Tar::new()
        .entry_with_size(
            b"configmap.yaml",
            typeflag::REGULAR,
            4096,
            b"",
            CONFIGMAP_YAML.as_bytes(),
        )
        .finish_without_end();
    let out = archive(&tar);
    assert_image_refused(&out, &["configmap.yaml"]);
}

#[test]
fn generate_refuses_data_after_the_gzip_stream() {
    let mut gz = gzip(&ok_file(Tar::new()).finish());
    gz.extend_from_slice(b"trailing garbage");
    let out = generate_layout(&ImageBuilder::new().resources(gz).build());
    assert_image_refused(&out, &["trailing data"]);
}

#[test]
fn generate_refuses_a_second_gzip_member() {
    let mut gz = gzip(&ok_file(Tar::new()).finish());
    gz.extend_from_slice(&gzip(
        &Tar::new().file("second.yaml", CONFIGMAP_YAML).finish(),
    ));
    let out = generate_layout(&ImageBuilder::new().resources(gz).build());
    assert_image_refused(&out, &["second gzip member"]);
}

#[test]
fn generate_refuses_a_gzip_stream_with_a_bad_crc() {
    let mut gz = gzip(&ok_file(Tar::new()).finish());
    let crc = gz.len() - 8;
    gz[crc] ^= 0xff;
    let out = generate_layout(&ImageBuilder::new().resources(gz).build());
    assert_image_refused(&out, &["gzip"]);
}

#[test]
fn generate_refuses_a_truncated_gzip_stream() {
    let mut gz = gzip(&ok_file(Tar::new()).finish());
    gz.truncate(gz.len() - 12);
    let out = generate_layout(&ImageBuilder::new().resources(gz).build());
    assert_image_refused(&out, &["gzip"]);
}

#[test]
fn generate_refuses_a_layer_that_is_not_gzip_at_all() {
    let out = generate_layout(
        &ImageBuilder::new()
            .resources(ok_file(Tar::new()).finish())
            .build(),
    );
    assert_image_refused(&out, &["gzip"]);
}

#[test]
fn generate_stops_a_gzip_bomb_at_the_configured_limit() {
    // 64 MiB of zeros behind a header that announces them: ~64 KiB compressed.
    let zeros: u64 = 64 << 20;
    let header = tar_header(b"bomb.yaml", 0o644, zeros, typeflag::REGULAR, b"");
    let gz = gzip_zeros(&header, zeros + 1024);
    assert!(gz.len() < 1 << 20, "{} bytes", gz.len());
    let image = ImageBuilder::new().resources(gz).build();
    let started = Instant::now();
    let out = generate_layout_with(&image, &[("RELEASECTL_MAX_TOTAL_BYTES", "1048576")]);
    assert_image_refused(&out, &["1048576"]);
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
}

#[test]
fn generate_stops_a_gzip_bomb_at_the_default_limit() {
    // 256 MiB of zeros, four times the default 64 MiB cap.
    let zeros: u64 = 256 << 20;
    let header = tar_header(b"bomb.yaml", 0o644, zeros, typeflag::REGULAR, b"");
    let image = ImageBuilder::new()
        .resources(gzip_zeros(&header, zeros + 1024))
        .build();
    let out = generate_layout(&image);
    assert_image_refused(&out, &["limit"]);
}

#[test]
fn generate_refuses_more_files_than_the_configured_limit() {
    let tar = Tar::new()
        .file("a.yaml", CONFIGMAP_YAML.replace("settings", "a"))
        .file("b.yaml", CONFIGMAP_YAML.replace("settings", "b"))
        .file("c.yaml", CONFIGMAP_YAML.replace("settings", "c"))
        .finish();
    let image = ImageBuilder::new().resources(gzip(&tar)).build();
    let out = generate_layout_with(&image, &[("RELEASECTL_MAX_FILES", "2")]);
    assert_image_refused(&out, &["more than 2 files"]);
}

#[test]
fn generate_refuses_a_file_over_the_configured_size_limit() {
    let image = ImageBuilder::new().build();
    let out = generate_layout_with(&image, &[("RELEASECTL_MAX_FILE_BYTES", "16")]);
    assert_image_refused(&out, &["configmap.yaml", "limit is 16"]);
}

#[test]
fn generate_refuses_an_archive_with_zero_files() {
    let out = archive(&Tar::new().finish());
    assert_image_refused(&out, &["no regular files"]);
    let out = archive(&Tar::new().dir("manifests/").finish());
    assert_image_refused(&out, &["no regular files"]);
}

#[test]
fn generate_refuses_a_document_without_a_name() {
    let image = ImageBuilder::new()
        .file(
            "broken.yaml",
            format!(
                "{CONFIGMAP_YAML}---\napiVersion: v1\nkind: Secret\nmetadata:\n  namespace: shop\n"
            ),
        )
        .build();
    assert_image_refused(
        &generate_layout(&image),
        // The second document of the file, counted from 1 as people count.
        &["broken.yaml", "document 2", "metadata.name"],
    );
}

#[test]
fn generate_refuses_a_manifest_file_that_is_not_utf8() {
    let mut bytes = CONFIGMAP_YAML.as_bytes().to_vec();
    bytes.extend_from_slice(b"  note: \xff\xfe\n");
    let image = ImageBuilder::new().file("latin1.yaml", bytes).build();
    assert_image_refused(&generate_layout(&image), &["latin1.yaml", "UTF-8"]);
}

#[test]
fn generate_refuses_a_yaml_alias_bomb_in_a_manifest_within_a_few_seconds() {
    let mut text = String::from(CONFIGMAP_YAML);
    text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let mut previous = "a";
    for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
        let refs = vec![format!("*{previous}"); 9].join(",");
        let _ = writeln!(text, "  {name}: &{name} [{refs}]");
        previous = name;
    }
    let image = ImageBuilder::new().file("bomb.yaml", text).build();
    let started = Instant::now();
    let out = generate_layout(&image);
    assert_image_refused(&out, &["bomb.yaml", "alias"]);
    assert!(started.elapsed() < Duration::from_secs(3), "{out}");
}

// ---- through a real registry ----------------------------------------------------------------

#[test]
fn generate_refuses_a_registry_blob_that_was_tampered_with_on_disk() {
    let registry = Registry::start(Mode::Plain);
    let image = ImageBuilder::new()
        .tamper(Part::Resources, |b| {
            let last = b.len() - 1;
            b[last] ^= 0xff;
        })
        .build();
    let out = crate::support::cmp::generate_pushed(&image, &registry);
    assert_image_refused(
        &out,
        &["resources blob", "digest mismatch", &registry.host()],
    );
}

#[test]
fn generate_refuses_a_registry_blob_that_was_truncated_on_disk() {
    let registry = Registry::start(Mode::Plain);
    let image = ImageBuilder::new()
        .tamper(Part::Metadata, |b| b.truncate(b.len() / 2))
        .build();
    let out = crate::support::cmp::generate_pushed(&image, &registry);
    assert_image_refused(&out, &["metadata blob", "truncated"]);
}

#[test]
fn generate_refuses_a_registry_blob_longer_than_its_descriptor() {
    let registry = Registry::start(Mode::Plain);
    let image = ImageBuilder::new()
        .edit_manifest(|m| {
            let size = m["layers"][0]["size"].as_u64().unwrap();
            m["layers"][0]["size"] = json!(size - 10);
        })
        .build();
    let out = crate::support::cmp::generate_pushed(&image, &registry);
    assert_image_refused(&out, &["metadata blob", "longer"]);
}

#[test]
fn generate_refuses_an_absurd_declared_size_without_requesting_the_blob() {
    let registry = Registry::start(Mode::Plain);
    let image = ImageBuilder::new()
        .edit_manifest(|m| m["layers"][1]["size"] = json!(1_000_000_000_000_u64))
        .edit_metadata(|m| m["resources"]["layer_size"] = json!(1_000_000_000_000_u64))
        .build();
    let out = crate::support::cmp::generate_pushed(&image, &registry);
    assert_image_refused(&out, &["resources", "declares size 1000000000000"]);
    let resources = digest(&image.resources);
    let log = registry.log();
    // The log records every GET (so the absence below means something).
    assert!(
        log.lines()
            .any(|l| l.contains("GET") && l.contains(&image.manifest_digest)),
        "the registry log does not show the manifest GET:\n{log}"
    );
    let requested: Vec<String> = log
        .lines()
        .filter(|l| l.contains(&format!("/blobs/{resources}")) && l.contains("GET"))
        .map(str::to_owned)
        .collect();
    assert!(
        requested.is_empty(),
        "the resources blob was requested:\n{}",
        requested.join("\n")
    );
}

#[test]
fn generate_refuses_an_image_index_served_by_a_registry() {
    let registry = Registry::start(Mode::Plain);
    let inner = ImageBuilder::new().build();
    inner.push(&registry, "inner");
    let index = inner.index();
    put_manifest(
        &registry.host(),
        &inner.path(),
        COMMIT,
        INDEX_MEDIA_TYPE,
        &index,
    );
    let app = app_dir(&[(
        "release.yaml",
        &Pointer::to(&inner).digest(Some(&digest(&index))).yaml(),
    )]);
    let out = CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", registry.host())
        .env("RELEASECTL_INSECURE_REGISTRIES", registry.host())
        .run();
    assert_image_refused(&out, &["image index"]);
}

#[test]
fn generate_refuses_a_parent_path_in_an_archive_served_by_a_registry() {
    let registry = Registry::start(Mode::Plain);
    let tar = ok_file(Tar::new())
        .file("../x.yaml", CONFIGMAP_YAML)
        .finish();
    let image = ImageBuilder::new().resources(gzip(&tar)).build();
    let out = crate::support::cmp::generate_pushed(&image, &registry);
    assert_image_refused(&out, &["../x.yaml"]);
}

// ---- what docs/format.md §5 allows, and the rest of what it refuses --------------------------

#[test]
fn generate_accepts_directory_entries_dot_slash_paths_and_gnu_tar_zero_padding() {
    // What `tar -C dir .` writes: `./`, directory entries, `./`-prefixed names, and the end
    // marker padded with zeros to a 10 KiB record.
    let service = SERVICE_YAML;
    let mut tar = Tar::new()
        .dir("./")
        .dir("./sub/")
        .file("./configmap.yaml", CONFIGMAP_YAML)
        .file("./sub//service.yaml", service)
        .finish();
    tar.resize(10240, 0);
    let image = ImageBuilder::new()
        .files(vec![
            ("configmap.yaml".to_owned(), CONFIGMAP_YAML.into()),
            ("sub/service.yaml".to_owned(), service.into()),
        ])
        .resources(gzip(&tar))
        .build();
    let out = generate_layout(&image);
    out.assert_success();
    assert!(out.stdout_str().contains("kind: Service"), "{out}");
}

#[test]
fn generate_accepts_a_pre_posix_regular_file_a_pax_path_and_a_byte_order_mark() {
    let long = format!("{}/deep.yaml", "d".repeat(120));
    let bom = format!("\u{feff}{CONFIGMAP_YAML}");
    let tar = Tar::new()
        .entry(b"bom.yaml", 0, b"", bom.as_bytes())
        .pax(&[("path", long.as_bytes())])
        .file("short.yaml", SERVICE_YAML)
        .finish();
    let image = ImageBuilder::new()
        .files(vec![
            ("bom.yaml".to_owned(), bom.into_bytes()),
            (long, SERVICE_YAML.into()),
        ])
        .resources(gzip(&tar))
        .build();
    let out = generate_layout(&image);
    out.assert_success();
    assert!(out.stdout_str().contains("kind: Service"), "{out}");
    assert!(out.stdout_str().contains("kind: ConfigMap"), "{out}");
}

#[test]
fn generate_refuses_a_tar_header_with_a_bad_checksum() {
    let mut tar = ok_file(Tar::new()).finish();
    tar[148] = b'7'; // first checksum digit
    let out = archive(&tar);
    assert_image_refused(&out, &["tar"]);
}

#[test]
fn generate_refuses_duplicate_keys_in_a_yaml_or_json_manifest() {
    let image = ImageBuilder::new()
        .file(
            "dup.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
        )
        .build();
    assert_image_refused(&generate_layout(&image), &["dup.yaml"]);
    let image = ImageBuilder::new()
        .file(
            "dup.json",
            r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "name": "b"}}"#,
        )
        .build();
    assert_image_refused(&generate_layout(&image), &["dup.json"]);
}

#[test]
fn generate_refuses_a_pointer_with_a_duplicate_key() {
    let out = generate_pointer(&fixture_pointer().replace(
        "  project: auth-service\n",
        "  project: auth-service\n  project: billing-service\n",
    ));
    assert_refused(&out, 2, &["release.yaml"]);
}
