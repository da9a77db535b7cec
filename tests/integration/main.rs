//! Integration tests: one binary (STYLE.md item 8). `support` is the harness (real registries,
//! skopeo, oras, credential helpers, hostile servers, a command runner whose failures explain
//! themselves); `common` holds helpers the product tests share; each other module is one
//! concern of the product.

mod common;
mod support;

mod approvals;
mod approvals_support;
mod check;

mod create_input;
mod credentials;
mod deploy;
mod deploy_race;
mod deploy_support;
mod generate;
mod generate_cache;
mod generate_faults;
mod generate_identity;
mod generate_inputs;
mod gitops;
mod harness;
mod images;
mod interop;
mod policy;
mod register;
mod registry_auth;
mod remote_errors;
mod repo_files;
mod ssh;
mod tamper;
