//! `qahub`: parse the command line, then serve or run an operator command.

use std::process::ExitCode;

use clap::Parser;
use server::{
    cli::{Cli, Command},
    shutdown_signal, Application, Config,
};
use tracing_subscriber::EnvFilter;

// Requests allocate many small, short-lived objects across threads; mimalloc frees them
// in a fraction of glibc's time (a tenth of the warm token path was malloc/free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("QAHUB_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_writer(std::io::stderr)
        .init();

    let result = match cli.command {
        Command::Serve(args) => {
            let check = !args.skip_site_check;
            serve(Config::new(cli.db, args), check).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Backup { file } => server::backup::backup(&cli.db.database_url, &file).await,
        Command::Restore { file } => server::backup::restore(&cli.db.database_url, &file).await,
        command => server::cli::run_admin(cli.db, command).await.map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, check_site: bool) -> anyhow::Result<()> {
    // Pages without their script and stylesheet would be served unstyled and never
    // hydrate, with nothing in the log: refuse instead, saying what is missing.
    if check_site {
        config.site.check()?;
    }
    let app = Application::build(config).await?;
    tracing::info!("listening on http://{}", app.local_addr());
    app.run_until(shutdown_signal()).await
}
