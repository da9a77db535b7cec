//! releasectl: immutable Release OCI images delivered through GitOps with Argo CD.
//!
//! Modules by concept: identities (`ids`, `digest`), the image format (`format`, `archive`,
//! `manifests`), where images live (`oci`), verified reading (`release`), the pointer file
//! (`pointer`), and the program (`app`) with its commands (`cmd`), command line (`cli`) and
//! settings (`settings`).

pub mod app;
pub mod approvals;
pub mod archive;
pub mod argocd;
pub mod cache;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod cosign;
pub mod credentials;
pub mod deploy;
pub mod digest;
pub mod duration;
pub mod error;
pub mod exit;
pub mod format;
pub mod gitops;
pub mod ids;
pub mod log;
pub mod manifests;
pub mod oci;
pub mod pointer;
pub mod policy;
pub mod progress;
pub mod registration;
pub mod release;
pub mod retry;
pub mod serve;
pub mod settings;
pub mod signing;
pub mod text;
pub mod tls;
pub mod yaml;
