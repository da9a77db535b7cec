//! The shell examples of the README and of docs/*.md that are marked runnable — fenced
//! ```` ```console ```` blocks, whose `$ ` lines are commands (a line ending in `\` continues
//! on the next) — run as written. A block runs as one shell script that stops at the first
//! failure, at the repository's root, or, after a `<!-- in the fixture world -->` line, in
//! the fixture world of the help examples (tests/integration/help.rs). `cargo run --` is the
//! binary under test (the one cargo would run), and `releasectl` is on PATH.

use std::path::{Path, PathBuf};

use crate::support::{Cmd, manifest_dir};

/// The marker line that puts the next console block in the fixture world.
const IN_WORLD: &str = "<!-- in the fixture world -->";

/// One runnable block: where it is, whether it runs in the world, and its script.
struct Block {
    place: String,
    in_world: bool,
    script: String,
}

/// The console blocks of `text` (the file `name`).
fn blocks(name: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```console" {
            i += 1;
            continue;
        }
        let in_world = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim() == IN_WORLD);
        let start = i + 1;
        let mut commands = Vec::new();
        let mut continued = false;
        i += 1;
        while i < lines.len() && lines[i].trim_end() != "```" {
            let line = lines[i];
            if continued {
                commands.push(line.to_owned());
            } else if let Some(command) = line.strip_prefix("$ ") {
                commands.push(command.to_owned());
            }
            continued = (continued || line.starts_with("$ ")) && line.ends_with('\\');
            i += 1;
        }
        out.push(Block {
            place: format!("{name}:{start}"),
            in_world,
            script: commands.join("\n"),
        });
    }
    out
}

fn documents() -> Vec<PathBuf> {
    let root = manifest_dir();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn console_blocks_are_split_into_commands_with_their_continuations() {
    let text = "x\n<!-- in the fixture world -->\n```console\n$ a \\\n    --b\noutput\n$ c\n```\n```sh\nd\n```\n";
    let found = blocks("T.md", text);
    assert_eq!(found.len(), 1);
    assert!(found[0].in_world);
    assert_eq!(found[0].script, "a \\\n    --b\nc");
    assert_eq!(found[0].place, "T.md:3", "the line of the opening fence");
}

#[test]
fn every_runnable_example_of_the_readme_and_the_docs_runs_as_written() {
    let binary = env!("CARGO_BIN_EXE_releasectl");
    let bin_dir = Path::new(binary).parent().expect("bin dir").to_owned();
    let world = super::help::example_world();
    let mut ran = 0;
    let mut failures = Vec::new();
    for file in documents() {
        let name = file
            .strip_prefix(manifest_dir())
            .expect("in the repository")
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).expect("read doc");
        for block in blocks(&name, &text) {
            let script = format!(
                "set -e\n{}",
                block.script.replace("cargo run --", &format!("'{binary}'"))
            );
            let cmd = if block.in_world {
                super::help::in_world(&world, &script)
            } else {
                Cmd::new("sh")
                    .args(["-c", &script])
                    .path_prepend(&bin_dir)
                    .current_dir(manifest_dir())
            };
            let out = cmd.run();
            ran += 1;
            if !out.success() {
                failures.push(format!("{}: {out}", block.place));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran >= 4, "only {ran} runnable blocks found");
}
