//! `serve`: the release API (docs/serve.md). Arguments and the configuration file → a
//! running server; everything else is in [`crate::serve`].

use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::exit::InvalidInput;
use crate::serve::{self, State, auth::Authenticator, config, writer::Writer};
use crate::settings::Settings;

pub async fn run(args: &ServeArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let config = match &args.config {
        Some(path) => config::load(path)?,
        None => config::Config::default(),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(serve::tls::acceptor(cert, key)?),
        _ => None,
    };
    let addr = args.listen.or(config.listen).ok_or_else(|| {
        InvalidInput("where to listen? pass --listen ADDR or set listen in the config file".into())
    })?;
    if config.issuers.is_empty() && config.static_tokens.is_empty() && !config.anonymous_read {
        return Err(InvalidInput(
            "no way in: the config file names no issuers and no static_tokens, and anonymous_read is off".into(),
        )
        .into());
    }
    let auth = Authenticator::load(&config).await?;
    let opener = settings.clone();
    let writer = Writer::start(move || opener.open_gitops())?;
    let limiter = serve::limits::Limiter::new(config.rate_limit);
    let state = Arc::new(State {
        settings: settings.clone(),
        config,
        auth,
        writer,
        metrics: serve::metrics::Metrics::default(),
        limiter,
        tls,
    });
    serve::serve(state, addr).await?;
    Ok(super::Outcome::ok(Vec::new()))
}
