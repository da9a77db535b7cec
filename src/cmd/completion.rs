//! `completion SHELL` and `man [COMMAND]`: shell completions and roff man pages, generated
//! from the same clap definition as the command line itself, so they cannot drift from it.

use crate::exit::{InvalidInput, Result};

/// The completion script for `shell` (bash, zsh, fish, powershell, elvish).
pub fn completion(shell: clap_complete::Shell) -> Result<super::Outcome> {
    let mut command = crate::cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "releasectl", &mut out);
    Ok(super::Outcome::ok(out))
}

/// The man page of `releasectl`, or of one of its commands (`releasectl man deploy`, or
/// `releasectl man release create`).
pub fn man(path: &[String]) -> Result<super::Outcome> {
    let mut command = crate::cli::command();
    command.build();
    let mut name = String::from("releasectl");
    for word in path {
        let Some(sub) = command.find_subcommand(word).cloned() else {
            let known: Vec<String> = command
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .collect();
            return Err(InvalidInput(format!(
                "man {}: no such command: expected one of {}",
                crate::text::excerpt(&path.join(" ")),
                known.join(", ")
            ))
            .into());
        };
        name = format!("{name}-{word}");
        command = sub.name(name.clone());
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(command).render(&mut out)?;
    Ok(super::Outcome::ok(out))
}
