//! The `hotline` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::Config;

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "A telephony IVR and ACD engine that talks SIP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine (with no --config: the embedded demo on 127.0.0.1:5060).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a config file and its prompts; errors name the key and line.
    CheckConfig { file: PathBuf },
    /// Print the embedded default config.
    DefaultConfig,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            let config = match config {
                Some(path) => match Config::load(&path) {
                    Ok(c) => c,
                    Err(e) => return fail(&e.to_string()),
                },
                None => Config::embedded(),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(&format!("cannot start runtime: {e}")),
            };
            match runtime.block_on(hotline::runtime::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
        Command::CheckConfig { file } => {
            let config = match Config::load(&file) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string()),
            };
            if let Err(e) = hotline::media::catalog::load(&config) {
                return fail(&format!("{}: {e}", file.display()));
            }
            println!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        Command::DefaultConfig => {
            print!("{}", hotline::config::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("hotline: {message}");
    ExitCode::from(2)
}
