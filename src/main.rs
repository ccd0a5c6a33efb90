//! The `hotline` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::Config;
use hotline::setup::Setup;

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
    /// Check a config file, its prompts, IVR program and caller directory;
    /// errors name the key and line.
    CheckConfig { file: PathBuf },
    /// Print the embedded default config.
    DefaultConfig,
    /// Staffing plan from call records: agents per interval by Erlang C
    /// and Erlang A (docs/planning.md).
    Plan(hotline::plan::PlanArgs),
    /// Voice messages left by callers.
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
}

#[derive(Subcommand)]
enum MessagesCommand {
    /// List recorded messages, newest first.
    List {
        /// Config whose messages folder to read (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Loads a config file, or the embedded default.
fn load_config(path: Option<&PathBuf>) -> Result<(Config, String), String> {
    match path {
        Some(p) => Config::load(p)
            .map(|c| (c, p.display().to_string()))
            .map_err(|e| e.to_string()),
        None => Ok((Config::embedded(), "embedded default config".into())),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal; log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            let setup = match load_config(config.as_ref())
                .and_then(|(c, origin)| Setup::load(c, &origin).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(&format!("cannot start runtime: {e}")),
            };
            match runtime.block_on(hotline::runtime::run(setup, config.clone())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
        Command::CheckConfig { file } => {
            match load_config(Some(&file))
                .and_then(|(c, origin)| Setup::load(c, &origin).map_err(|e| e.to_string()))
            {
                Ok(setup) => {
                    println!(
                        "{}: OK ({} IVR nodes, {} prompts, {} callers in the directory)",
                        file.display(),
                        setup.program.nodes.len(),
                        setup.prompts.set.len(),
                        setup.directory.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Messages {
            command: MessagesCommand::List { config },
        } => {
            let config = match load_config(config.as_ref()) {
                Ok((c, _)) => c,
                Err(e) => return fail(&e),
            };
            let dir = config.messages_dir();
            match hotline::messages::read_index(&dir) {
                Ok((records, skipped)) => {
                    if records.is_empty() {
                        println!("no messages in {}", dir.display());
                    } else {
                        print!("{}", hotline::messages::format_table(&records));
                    }
                    if skipped > 0 {
                        eprintln!("({skipped} unreadable index lines skipped)");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Plan(args) => {
            match hotline::plan::run(&args, &mut std::io::stdout().lock(), &mut std::io::stderr()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
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
