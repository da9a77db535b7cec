//! A write survives an overloaded server (issue 14): a connection that drops during an
//! attempt's fetch or push is a lost race, retried within the deadline, and a push whose reply
//! was lost is recognised as landed when the next fetch finds its commit (no second commit).
//!
//! A stand-in TCP proxy in front of `git daemon` makes the faults (a real server drops
//! connections only under load): it reads each connection's request line, and for the
//! connections the test names closes the client's socket at once, or relays the push but
//! swallows the server's reply and closes the client's socket once the server finished.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::support::Output;
use crate::support::git::{GitDaemon, Hooks};
use crate::support::setup::PROJECT;
use crate::support::world::World;

const OPEN: &str = "environments:\n  dev:\n    promotion_policy: {auto_deploy: true}\n";

/// What the proxy does to a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Relay both ways.
    None,
    /// Close the client's socket once its request line arrived.
    Drop,
    /// Relay the client's bytes; relay the server's only until the client sent more than its
    /// request line (the push), then swallow them and close the client's socket when the
    /// server is done.
    LoseReply,
}

/// A proxy to `127.0.0.1:upstream` that applies `faults(service, n)` to the `n`th (0-based)
/// connection for `service` (`git-upload-pack`, `git-receive-pack`); its port.
fn proxy(upstream: u16, faults: fn(&str, usize) -> Fault) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("proxy address").port();
    let uploads = Arc::new(AtomicUsize::new(0));
    let pushes = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (uploads, pushes) = (Arc::clone(&uploads), Arc::clone(&pushes));
            thread::spawn(move || relay(client, upstream, faults, &uploads, &pushes));
        }
    });
    port
}

fn relay(
    mut client: TcpStream,
    upstream: u16,
    faults: fn(&str, usize) -> Fault,
    uploads: &AtomicUsize,
    pushes: &AtomicUsize,
) {
    let mut len = [0u8; 4];
    if client.read_exact(&mut len).is_err() {
        return;
    }
    let n = usize::from_str_radix(std::str::from_utf8(&len).unwrap_or("0"), 16).unwrap_or(0);
    let mut line = vec![0u8; n.saturating_sub(4)];
    if client.read_exact(&mut line).is_err() {
        return;
    }
    let request = String::from_utf8_lossy(&line).into_owned();
    let service = request.split(' ').next().unwrap_or_default().to_owned();
    let counter = if service == "git-receive-pack" {
        pushes
    } else {
        uploads
    };
    let fault = faults(&service, counter.fetch_add(1, Ordering::SeqCst));
    if fault == Fault::Drop {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    if server
        .write_all(&len)
        .and_then(|()| server.write_all(&line))
        .is_err()
    {
        return;
    }
    let sent = Arc::new(AtomicUsize::new(0));
    let (mut from_client, mut to_server) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let tally = Arc::clone(&sent);
    let upward = thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(k) = from_client.read(&mut buf) {
            if k == 0 || to_server.write_all(&buf[..k]).is_err() {
                break;
            }
            tally.fetch_add(k, Ordering::SeqCst);
        }
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 8192];
    while let Ok(k) = server.read(&mut buf) {
        if k == 0 {
            break;
        }
        let swallow = fault == Fault::LoseReply && sent.load(Ordering::SeqCst) > 0;
        if !swallow && client.write_all(&buf[..k]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upward.join();
}

/// The world served over `git daemon` behind the proxy; the daemon (kept alive by the caller).
fn behind_proxy(world: &mut World, faults: fn(&str, usize) -> Fault) -> GitDaemon {
    world.remote.install_hooks(&Hooks::log());
    let daemon = GitDaemon::start(&world.remote);
    let upstream: u16 = daemon
        .url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the daemon's port");
    let port = proxy(upstream, faults);
    world.url = format!("git://127.0.0.1:{port}/{}", world.remote.name());
    daemon
}

/// Deploys a fresh release of `seed` through a proxy in front of `git daemon` that applies
/// `faults`; asserts that the deploy succeeded saying `said` on stderr, runs the release and
/// landed as exactly one commit. Returns the deploy's output.
fn deploy_through(seed: &str, faults: fn(&str, usize) -> Fault, said: &str) -> (World, Output) {
    let mut world = World::new(OPEN);
    let release = world.main_release(seed);
    let daemon = behind_proxy(&mut world, faults);
    let before = world.remote.commit_count();
    let out = world
        .cmd()
        .env("RELEASECTL_LOG", "info")
        .args(["deploy", "dev", PROJECT, &release.tag])
        .run();
    out.assert_success().assert_stderr_contains(said);
    assert_eq!(
        world.running("dev", PROJECT).as_deref(),
        Some(&*release.commit)
    );
    assert_eq!(
        world.remote.commit_count(),
        before + 1,
        "exactly one commit landed"
    );
    drop(daemon);
    (world, out)
}

#[test]
fn a_deploy_whose_fetch_and_push_connections_drop_is_retried_and_lands() {
    // The first fetch connection and the first push connection are closed on arrival.
    let (world, _) = deploy_through(
        "dropped",
        |_, n| if n == 0 { Fault::Drop } else { Fault::None },
        "dropped connection",
    );
    world
        .remote
        .git_ok(&["fsck", "--full", "--strict", "--no-dangling"]);
}

#[test]
fn a_push_whose_reply_was_lost_is_found_landed_and_not_written_twice() {
    let (world, out) = deploy_through(
        "lost-reply",
        |service, n| {
            if service == "git-receive-pack" && n == 0 {
                Fault::LoseReply
            } else {
                Fault::None
            }
        },
        "whose reply was lost had landed",
    );
    let head = world.remote.head();
    out.assert_stdout_contains(&head[..7]);
}
