//! `releasectl check` applies `generate`'s `env.yaml` kinds rule to every `env.yaml` next to a
//! pointer, at the tip and in each commit of a range: a workload slipped into an environment's
//! values is a violation (exit 4) before Argo CD ever refuses it.

use serde_json::Value;

use crate::support::setup::stdout_json as json;
use crate::support::world::{PRODUCTION, World, plain_policy, pointer_path, sha};

const DEPLOYMENT: &str =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n";

fn env_path() -> String {
    pointer_path(PRODUCTION, crate::support::setup::PROJECT).replace("release.yaml", "env.yaml")
}

fn deployed() -> World {
    let world = World::without_actor(&plain_policy());
    let one = world.tagged(&sha("one"), "v1.0.0");
    world.approve_both(&one);
    world
        .cmd()
        .args(crate::check::DEPLOY_V1)
        .run()
        .assert_success();
    world
}

#[test]
fn check_flags_an_env_yaml_holding_a_kind_that_is_not_allowed() {
    let world = deployed();
    let bad = world.hand_push(&[(&env_path(), Some(DEPLOYMENT))], "Add a workload by hand");
    for args in [&["check"][..], &["check", "--range", "..main"][..]] {
        let out = world.cmd().args(["-o", "json"]).args(args).run();
        out.assert_exit(4);
        let v: Vec<Value> = json(&out)["violations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(v[0]["rule"], "env.yaml");
        assert_eq!(v[0]["file"], env_path().as_str());
        assert!(
            v[0]["actual"]
                .as_str()
                .is_some_and(|a| a.contains("apps/Deployment shop/web")),
            "{v:#?}"
        );
        if args.len() > 1 {
            assert_eq!(v[0]["commit"], bad.as_str());
        }
    }
}

#[test]
fn check_accepts_an_env_yaml_of_allowed_kinds() {
    let world = deployed();
    world.hand_push(
        &[(
            &env_path(),
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: env-values\n"),
        )],
        "Environment values",
    );
    world
        .ok(&["check"])
        .assert_stdout_contains("0 violation(s)");
    world
        .ok(&["check", "--range", "..main"])
        .assert_stdout_contains("0 violation(s)");
}
