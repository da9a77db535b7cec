//! The one writer: every request that touches the GitOps repository runs, in arrival order,
//! on one thread that owns the repository's clone (a `GitOps` is neither shared nor sent).
//! Writes go through [`crate::gitops::GitOps::transact`], so each is its own commit, its
//! own trailers and its own refusal, planned on the tip the previous one left.
//!
//! Invariants: a job starts only while the queue is open; once [`Writer::close`] is called,
//! new jobs are refused (503) and those already queued run to completion, so a shutdown never
//! leaves half a write; the queue is bounded and a full queue refuses at once (503).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::http::Reply;
use crate::gitops::GitOps;

/// Queued jobs beyond this are refused with 503.
pub const QUEUE: usize = 1024;

type JobFuture<'a> = Pin<Box<dyn Future<Output = Reply> + 'a>>;
/// A job: given the repository, a future that answers the request.
pub type Job = Box<dyn for<'a> FnOnce(&'a GitOps) -> JobFuture<'a> + Send>;
/// A queued job and where its reply goes.
type Queued = (Job, oneshot::Sender<Reply>);

/// The queue in front of the writer thread.
pub struct Writer {
    sender: Mutex<Option<mpsc::Sender<Queued>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    depth: AtomicUsize,
}

impl Writer {
    /// Starts the writer thread with the repository `open` gives.
    pub fn start(
        open: impl FnOnce() -> crate::exit::Result<GitOps> + Send + 'static,
    ) -> crate::exit::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Queued>(QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("releasectl-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(crate::exit::Error::from(e)));
                        return;
                    }
                };
                let gitops = match open() {
                    Ok(g) => g,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                runtime.block_on(async {
                    while let Some((job, answer)) = rx.recv().await {
                        let reply = job(&gitops).await;
                        let _ = answer.send(reply);
                    }
                });
            })?;
        ready_rx.recv().map_err(|_| InvalidStart)?.map(|()| Self {
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            depth: AtomicUsize::new(0),
        })
    }

    /// Jobs queued or running now.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether jobs are still taken.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.sender.lock().expect("not poisoned").is_some()
    }

    /// Queues `job` and waits for its reply; refuses (503) when closed or full.
    pub async fn run(&self, job: Job) -> Reply {
        let sender = self.sender.lock().expect("not poisoned").clone();
        let Some(sender) = sender else {
            return Reply::unavailable(
                "the server is shutting down: nothing was written; retry on another replica",
            );
        };
        let (tx, rx) = oneshot::channel();
        if sender.try_send((job, tx)).is_err() {
            return Reply::unavailable("the write queue is full: nothing was written; retry later");
        }
        self.depth.fetch_add(1, Ordering::Relaxed);
        let reply = rx.await.unwrap_or_else(|_| {
            Reply::internal("the writer stopped before answering; the request may or may not have landed: check the repository")
        });
        self.depth.fetch_sub(1, Ordering::Relaxed);
        reply
    }

    /// Stops taking jobs and waits until every queued job has finished.
    pub fn close(&self) {
        drop(self.sender.lock().expect("not poisoned").take());
        if let Some(t) = self.thread.lock().expect("not poisoned").take() {
            let _ = t.join();
        }
    }
}

/// The writer thread ended before it opened the repository.
#[derive(Debug, thiserror::Error)]
#[error("the writer thread ended before it opened the GitOps repository")]
pub struct InvalidStart;

crate::exit_class!(InvalidStart => Other);
