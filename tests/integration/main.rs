//! Integration tests: one binary. `support` is the harness (real registries, skopeo, oras,
//! credential helpers, hostile servers, a command runner whose failures explain themselves,
//! the GitOps fixture world) and tests itself in `support::selftest`; each other module is one
//! concern of the product.

mod support;

mod approvals;
mod archive;
mod archive_differential;
mod argocd;
mod check;
mod check_env;
mod cli;
mod conflicts;

mod cold_cache;
mod create_input;
mod credentials;
mod deploy;
mod deploy_race;
mod docs_examples;
mod dropped_connections;
mod generate;
mod generate_cache;
mod generate_env;
mod generate_faults;
mod generate_identity;
mod generate_inputs;
mod generate_links;
mod generate_name;
mod generate_parameters;
mod gitops;
mod help;
mod hostile_text;
mod identity_token;
mod images;
mod install;
mod interop;
mod outcomes;
mod outputs;
mod policy;
mod policy_semantics;
mod register;
mod register_format;
mod registry_auth;
mod remote_errors;
mod repo_files;
mod serve;
mod serve_batch;
mod serve_dashboard;
mod serve_limits;
mod serve_metrics;
mod serve_oidc;
mod serve_schema;
mod serve_tls;
mod server_cli;
mod signatures;
mod signed_commits;
mod ssh;
mod tamper;
