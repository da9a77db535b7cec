//! The dashboard of `releasectl serve` in headless Chromium (Debian's `chromium`): the
//! matrix, the project page with its history and the diff between two environments render
//! (`--dump-dom`), and an approval goes through the forms as a browser posts them (sign-in
//! cookie, CSRF field, dry-run preview, confirm), its result then seen in Chromium. On a
//! failed check, a screenshot of the page is saved to a directory the failure names.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::cmd::Cmd;
use crate::support::http::{HttpResponse, parse_response};
use crate::support::serve::{Served, token};
use crate::support::setup::PROJECT;
use crate::support::world::{ALICE, BOB, MONDAY, PRODUCTION, Release, World, sha};

const FULL: &str = "company/monorepo/auth-service";

/// Where screenshots of failed checks go (kept after the run).
fn screenshot_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("releasectl-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the screenshot dir");
    dir
}

fn chromium(profile: &Path) -> Cmd {
    Cmd::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .timeout(Duration::from_secs(90))
}

/// The DOM Chromium builds from `url`; each of `needles` must be in it, else a screenshot
/// is saved and the test fails naming it.
fn rendered(url: &str, needles: &[&str]) -> String {
    let profile = crate::support::temp_dir();
    let out = chromium(profile.path()).args(["--dump-dom", url]).run();
    out.assert_success();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let missing: Vec<&&str> = needles.iter().filter(|n| !dom.contains(**n)).collect();
    if !missing.is_empty() {
        let name: String = url
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let png = screenshot_dir().join(format!("{name}.png"));
        let shot = chromium(profile.path())
            .arg(format!("--screenshot={}", png.display()))
            .args(["--window-size=1280,2000", url])
            .run();
        eprintln!(
            "dashboard screenshot saved: {} ({})",
            png.display(),
            shot.status
        );
        panic!(
            "{url}: missing {missing:?}; screenshot in {}\n{dom}",
            png.display()
        );
    }
    dom
}

/// One HTTP/1.1 request as a browser sends a form: headers, and a urlencoded body.
fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.as_bytes()).expect("send body");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw).expect("an HTTP response")
}

fn unescape(v: &str) -> String {
    v.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The named fields of the form `id` in `html` (inputs with a value; selects' first option).
fn form_fields(html: &str, id: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no form {id} in\n{html}"));
    let form = &html[start..start + html[start..].find("</form>").expect("a closed form")];
    let mut fields = Vec::new();
    for tag in form
        .split('<')
        .filter(|t| t.starts_with("input") || t.starts_with("select"))
    {
        let attr = |name: &str| {
            tag.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(unescape)
        };
        if let Some(name) = attr("name") {
            fields.push((name, attr("value").unwrap_or_default()));
        }
    }
    fields
}

fn encode(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_owned(), value.to_owned()));
}

/// `fields` posted as a form to `path` with the session `cookie`.
fn post_form(addr: &str, path: &str, cookie: &str, fields: &[(String, String)]) -> HttpResponse {
    send(addr, "POST", path, &[("Cookie", cookie)], &encode(fields))
}

/// The project page of the default project, as the session `cookie` sees it.
fn project_page(addr: &str, cookie: &str) -> HttpResponse {
    send(
        addr,
        "GET",
        &format!("/ui/project/{FULL}"),
        &[("Cookie", cookie)],
        "",
    )
}

/// Signs `who` in with their token; the session cookie (`name=value`) it gets.
fn session(addr: &str, who: &str) -> String {
    let login = send(
        addr,
        "POST",
        "/ui/login",
        &[],
        &format!("token={}", token(who)),
    );
    login
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn manifests(objects: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = crate::support::temp_dir();
    let docs: Vec<String> = objects
        .iter()
        .map(|(name, value)| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: auth\ndata:\n  k: {value}\n")
        })
        .collect();
    std::fs::write(dir.path().join("configmaps.yaml"), docs.join("---\n"))
        .expect("write manifests");
    dir
}

/// A world where release 1 runs in staging and release 2 (changed `settings`, `old` gone,
/// `new` added) runs in dev, ahead of staging.
fn drifted_world() -> (World, Release, Release) {
    let world = World::example();
    let a = manifests(&[("settings", "one"), ("old", "x")]);
    let b = manifests(&[("settings", "two"), ("new", "y")]);
    let first = world.create_from(
        PROJECT,
        &sha("dash-one"),
        a.path(),
        &["--source-branch", "main"],
    );
    let second = world.create_from(
        PROJECT,
        &sha("dash-two"),
        b.path(),
        &["--source-branch", "main"],
    );
    world.deploy_at(MONDAY, "dev", &first).assert_success();
    world
        .deploy_at("2026-11-23T11:00:00Z", "staging", &first)
        .assert_success();
    world
        .deploy_at("2026-11-23T11:30:00Z", "dev", &second)
        .assert_success();
    (world, first, second)
}

#[test]
fn the_dashboard_renders_the_matrix_the_project_history_and_the_diff_in_chromium() {
    let (world, first, second) = drifted_world();
    let served = Served::start(&world, &world.url, "anonymous_read: true\n");
    let base = format!("http://{}", served.addr);
    let matrix = rendered(
        &format!("{base}/"),
        &[
            "id=\"matrix\"",
            FULL,
            "<th>dev",
            "<th>staging",
            "<th>production",
            "drift from dev",
            "(2 approvals)",
        ],
    );
    assert!(
        matrix.contains(&format!("#{}", second.number))
            && matrix.contains(&format!("#{}", first.number)),
        "{matrix}"
    );
    assert!(
        matrix.contains("Sign in"),
        "anonymous readers are offered a sign-in: {matrix}"
    );
    let project = rendered(
        &format!("{base}/ui/project/{FULL}"),
        &[
            "id=\"history\"",
            "id=\"running\"",
            "id=\"releases\"",
            "deploy",
            &first.commit,
            &second.commit,
        ],
    );
    assert_eq!(
        project.matches("class=\"event\"").count(),
        3,
        "three deployments in the timeline: {project}"
    );
    assert!(
        !project.contains("id=\"approve\""),
        "no action forms for anonymous readers: {project}"
    );
    let diff = rendered(
        &format!("{base}/ui/diff/{FULL}?from=dev&to=staging"),
        &[
            "1 added, 1 removed, 1 changed",
            "id=\"changed\"",
            "class=\"del\">-  k: one",
            "class=\"add\">+  k: two",
        ],
    );
    assert!(diff.contains("new") && diff.contains("old"), "{diff}");
    for (t, _) in crate::support::serve::TOKENS {
        assert!(!matrix.contains(t) && !project.contains(t));
    }
}

#[test]
fn an_approval_goes_through_sign_in_preview_and_confirm_with_csrf_and_shows_in_chromium() {
    let (world, first, _) = drifted_world();
    let served = Served::start(&world, &world.url, "anonymous_read: true\n");
    let addr = served.addr.clone();
    // Sign in: the token comes back only as an HttpOnly, SameSite=Strict cookie.
    let bad = send(&addr, "POST", "/ui/login", &[], "token=wrong");
    assert_eq!(bad.status, 401, "{}", bad.body_str());
    let login = send(
        &addr,
        "POST",
        "/ui/login",
        &[],
        &format!("token={}", token(BOB)),
    );
    assert_eq!(login.status, 303, "{}", login.body_str());
    let cookie = login
        .header("set-cookie")
        .expect("a session cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = project_page(&addr, &cookie);
    let html = page.body_str();
    assert_eq!(page.status, 200, "{html}");
    assert!(
        html.contains(BOB) && !html.contains(token(BOB)),
        "signed in, token never in the page"
    );
    // A deploy preview shows the policy's decisions and writes nothing.
    let mut deploy = form_fields(&html, "deploy");
    set(&mut deploy, "environment", PRODUCTION);
    set(&mut deploy, "release_id", &first.number.to_string());
    let head = world.remote.head();
    let preview = post_form(&addr, "/ui/preview", &cookie, &deploy);
    let text = preview.body_str();
    assert_eq!(preview.status, 200, "{text}");
    assert!(
        text.contains("data-rule=\"allowed_triggers\"") && text.contains("id=\"would-refuse\""),
        "{text}"
    );
    assert_eq!(world.remote.head(), head, "a preview writes nothing");
    // Without the CSRF field, or from another site, nothing happens.
    let mut approve = form_fields(&html, "approve");
    set(&mut approve, "environment", PRODUCTION);
    set(&mut approve, "release_id", &first.number.to_string());
    set(
        &mut approve,
        "justification",
        "reviewed <b>in</b> the dashboard",
    );
    let forged: Vec<_> = approve
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    assert_eq!(
        post_form(&addr, "/ui/confirm", &cookie, &forged).status,
        403
    );
    let foreign = send(
        &addr,
        "POST",
        "/ui/confirm",
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        &encode(&approve),
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(world.remote.head(), head, "refused forms write nothing");
    // Preview, then confirm the approval.
    let preview = send(
        &addr,
        "POST",
        "/ui/preview",
        &[("Cookie", &cookie), ("Origin", &format!("http://{addr}"))],
        &encode(&approve),
    );
    let text = preview.body_str();
    assert_eq!(preview.status, 200, "{text}");
    assert!(
        text.contains("0 live") && text.contains("of 2 required"),
        "{text}"
    );
    let confirm = form_fields(&text, "confirm");
    let done = post_form(&addr, "/ui/confirm", &cookie, &confirm);
    let text = done.body_str();
    assert_eq!(done.status, 200, "{text}");
    assert!(text.contains("id=\"commit\""), "{text}");
    assert!(
        world
            .remote
            .last_message()
            .contains(&format!("Approved by: {BOB}"))
    );
    // Alice registered the release: four eyes refuse her approval through the same form.
    let alice_cookie = session(&addr, ALICE);
    let alice_page = project_page(&addr, &alice_cookie);
    let mut mine = form_fields(&alice_page.body_str(), "approve");
    set(&mut mine, "environment", PRODUCTION);
    set(&mut mine, "release_id", &first.number.to_string());
    set(&mut mine, "justification", "mine");
    let refused = post_form(&addr, "/ui/confirm", &alice_cookie, &mine);
    assert_eq!(refused.status, 403, "{}", refused.body_str());
    assert!(refused.body_str().contains("self_approval"));
    // Chromium sees the approval pending in the matrix.
    rendered(
        &format!("http://{addr}/"),
        &[&format!("#{} awaits approval 1/2", first.number)],
    );
}

#[test]
fn a_refused_deploy_is_previewed_again_overriding_its_failing_rules_with_a_reason_and_confirmed() {
    let (world, first, _) = drifted_world();
    let served = Served::start(&world, &world.url, "anonymous_read: true\n");
    let addr = served.addr.clone();
    let cookie = session(&addr, BOB);
    let page = project_page(&addr, &cookie);
    let html = page.body_str();
    let mut deploy = form_fields(&html, "deploy");
    assert!(
        deploy.iter().any(|(k, _)| k == "overrides") && deploy.iter().any(|(k, _)| k == "reason"),
        "the deploy form has override fields: {deploy:?}"
    );
    set(&mut deploy, "environment", PRODUCTION);
    set(&mut deploy, "release_id", &first.number.to_string());
    let head = world.remote.head();
    // Refused: the preview offers the failing rules, checked, and asks for a reason.
    let preview = post_form(&addr, "/ui/preview", &cookie, &deploy);
    let text = preview.body_str();
    assert!(text.contains("id=\"would-refuse\""), "{text}");
    let mut again = form_fields(&text, "override");
    let rules: Vec<String> = again
        .iter()
        .filter(|(k, _)| k == "overrides")
        .map(|(_, v)| v.clone())
        .collect();
    assert!(rules.contains(&"allowed_triggers".to_owned()), "{rules:?}");
    // Without a reason the API refuses the overrides, naming the reason.
    let no_reason = post_form(&addr, "/ui/preview", &cookie, &again);
    assert_eq!(no_reason.status, 400, "{}", no_reason.body_str());
    assert!(no_reason.body_str().contains("reason"));
    set(&mut again, "reason", "incident 4711: hotfix");
    let preview = post_form(&addr, "/ui/preview", &cookie, &again);
    let text = preview.body_str();
    assert_eq!(preview.status, 200, "{text}");
    assert!(!text.contains("id=\"would-refuse\""), "{text}");
    assert!(
        text.contains("overridden") && text.contains("id=\"overriding\""),
        "{text}"
    );
    assert_eq!(world.remote.head(), head, "previews write nothing");
    // The confirm form carries the same overrides and reason: the deploy lands with them.
    let confirm = form_fields(&text, "confirm");
    let done = post_form(&addr, "/ui/confirm", &cookie, &confirm);
    let text = done.body_str();
    assert_eq!(done.status, 200, "{text}");
    assert!(text.contains("id=\"commit\""), "{text}");
    let message = world.remote.last_message();
    assert!(
        message.contains("incident 4711: hotfix") && message.contains("allowed_triggers"),
        "{message}"
    );
    // Chromium shows the override and its reason in the project's history.
    rendered(
        &format!("http://{addr}/ui/project/{FULL}"),
        &["incident 4711: hotfix"],
    );
}
