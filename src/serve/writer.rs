//! The one writer: every request that touches the GitOps repository runs, in arrival order,
//! on one thread that owns the repository's clone (a `GitOps` is neither shared nor sent).
//!
//! Two kinds of work: a [`Plan`] (every write: registration, deploy, promote, rollback,
//! unblock, approval, revoke) is a decision the writer may batch: the plans queued one after
//! another are decided in order by [`crate::gitops::GitOps::transact_batch`] (one fetch, each
//! planned on the commits of the ones before it, one push of the chain, all decided again on a
//! lost race); a [`Job`] (a read, which fetches the tip itself) runs alone, between the
//! batches before and after it.
//!
//! Invariants: arrival order is kept (a read never overtakes a write queued before it); each
//! plan gets its own commit, trailers and refusal; a job starts only while the queue is open;
//! once [`Writer::close`] is called, new work is refused (503) and what is queued runs to
//! completion, so a shutdown never leaves half a write; the queue is bounded and a full queue
//! refuses at once (503).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::auth::Principal;
use super::http::Reply;
use super::routes::Clock;
use crate::gitops::{Author, GitOps, Landed, Snapshot, Step};

/// Queued jobs beyond this are refused with 503.
pub const QUEUE: usize = 1024;
/// At most this many plans are decided and pushed together.
pub const MAX_BATCH: usize = 256;

type JobFuture<'a> = Pin<Box<dyn Future<Output = Reply> + 'a>>;
/// A job: given the repository, a future that answers the request.
pub type Job = Box<dyn for<'a> FnOnce(&'a GitOps) -> JobFuture<'a> + Send>;

/// What one decision of a plan returns.
pub type Decision<'a> = Pin<Box<dyn Future<Output = crate::exit::Result<Step<()>>> + 'a>>;

/// A write the writer may batch with others: decided (possibly several times, on each tip
/// a batch attempt reaches) and answered once the batch has landed or failed.
pub trait Plan: Send {
    /// Who asked (the commit's author) and the request's clock (its time and deadline).
    fn caller(&self) -> (&Principal, &Clock);
    /// Decides on `tip` (which holds the commits of the plans before it in the batch); keeps
    /// what it needs to answer.
    fn decide<'a>(&'a mut self, gitops: &'a GitOps, tip: &'a Snapshot<'_>) -> Decision<'a>;
    /// The answer, given how its last decision ended (`commit`: what landed for it).
    fn reply(self: Box<Self>, landed: crate::exit::Result<Landed<()>>) -> Reply;
}

enum Work {
    Alone(Job),
    Plan(Box<dyn Plan>),
}

/// Queued work and where its reply goes.
type Queued = (Work, oneshot::Sender<Reply>);
type Answer = oneshot::Sender<Reply>;

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
                    while let Some(first) = rx.recv().await {
                        let mut queued = vec![first];
                        while queued.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(q) => queued.push(q),
                                Err(_) => break,
                            }
                        }
                        run_in_order(&gitops, queued).await;
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

    /// Queues `job` (run alone) and waits for its reply; refuses (503) when closed or full.
    pub async fn run(&self, job: Job) -> Reply {
        self.queue(Work::Alone(job)).await
    }

    /// Queues `plan` (batched with the plans queued next to it) and waits for its reply;
    /// refuses (503) when closed or full.
    pub async fn plan(&self, plan: Box<dyn Plan>) -> Reply {
        self.queue(Work::Plan(plan)).await
    }

    async fn queue(&self, job: Work) -> Reply {
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

/// Runs what was queued, in order: consecutive plans as one batch, jobs alone.
async fn run_in_order(gitops: &GitOps, queued: Vec<Queued>) {
    let mut plans: Vec<(Box<dyn Plan>, Answer)> = Vec::new();
    for (work, answer) in queued {
        match work {
            Work::Plan(p) => plans.push((p, answer)),
            Work::Alone(job) => {
                run_batch(gitops, std::mem::take(&mut plans)).await;
                let _ = answer.send(job(gitops).await);
            }
        }
    }
    run_batch(gitops, plans).await;
}

/// Decides and pushes `plans` as one batch and answers each.
async fn run_batch(gitops: &GitOps, plans: Vec<(Box<dyn Plan>, Answer)>) {
    let Some(deadline) = plans.iter().map(|(p, _)| p.caller().1.deadline).min() else {
        return;
    };
    let (mut plans, answers): (Vec<Box<dyn Plan>>, Vec<Answer>) = plans.into_iter().unzip();
    let authors: Vec<Author> = plans
        .iter()
        .map(|p| {
            let (who, clock) = p.caller();
            Author::new(&who.actor, clock.now.as_second())
        })
        .collect();
    crate::log::debug(&format!("writing a batch of {} requests", plans.len()));
    let outcomes = gitops
        .transact_batch(&authors, deadline, async |k, tip| {
            plans[k].decide(gitops, tip).await
        })
        .await;
    match outcomes {
        Ok(outcomes) => {
            let commits = outcomes
                .iter()
                .filter(|o| o.as_ref().is_ok_and(|l| l.commit.is_some()))
                .count();
            crate::log::debug(&format!(
                "a batch of {} requests landed {commits} commits",
                outcomes.len()
            ));
            for ((plan, answer), landed) in plans.into_iter().zip(answers).zip(outcomes) {
                let _ = answer.send(plan.reply(landed));
            }
        }
        Err(e) => {
            let reply = Reply::from_error(&e);
            for answer in answers {
                let _ = answer.send(reply.clone());
            }
        }
    }
}

/// The writer thread ended before it opened the repository.
#[derive(Debug, thiserror::Error)]
#[error("the writer thread ended before it opened the GitOps repository")]
pub struct InvalidStart;

crate::exit_class!(InvalidStart => Other);
