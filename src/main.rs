//! The `hotline` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use hotline::config::Config;
use hotline::report::format::Format;
use hotline::report::{GroupBy, Interval, UtcOffset};

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
    /// SLA figures from call records (see docs/metrics.md).
    Report(ReportArgs),
    /// Voice-notice campaigns on the running engine, through its HTTP API.
    Campaign(hotline::tools::campaign_cli::CampaignArgs),
    /// Read a password from standard input and print its Argon2id hash,
    /// for `[[web.users]] password_hash` or an agent's `web_password_hash`.
    HashPassword,
}

#[derive(Args)]
struct ReportArgs {
    /// Record files, or CDR folders (their YYYY-MM-DD.jsonl files).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Calls that arrived at or after this: RFC 3339, or YYYY-MM-DD (local midnight).
    #[arg(long)]
    from: Option<String>,
    /// Calls that arrived before this (same forms as --from).
    #[arg(long)]
    to: Option<String>,
    /// Interval length: 15m, 30m, 1h or 1d (any whole minutes dividing a day).
    #[arg(long, default_value = "1d", value_parser = Interval::parse)]
    interval: Interval,
    /// Take the defaults of --utc-offset, --service-level, --target and
    /// --short-abandon from this config's [api] table.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The operator's UTC offset: intervals and days start in local time
    /// [default: --config's api.utc_offset, else +00:00].
    #[arg(long, value_parser = UtcOffset::parse, allow_hyphen_values = true)]
    utc_offset: Option<UtcOffset>,
    /// Break the figures down by queue, agent, business-type or class.
    #[arg(long)]
    by: Option<GroupBy>,
    /// T of "answered within T" [default: --config's api.service_level, else 15s].
    #[arg(long, value_parser = humantime::parse_duration)]
    service_level: Option<std::time::Duration>,
    /// Abandons sooner than this are short abandons, kept out of the rates
    /// [default: --config's api.short_abandon, else off; 0s: off].
    #[arg(long, value_parser = humantime::parse_duration)]
    short_abandon: Option<std::time::Duration>,
    /// The service-level target drawn on the HTML chart
    /// [default: --config's api.service_level_target, else 80%].
    #[arg(long, value_parser = parse_percent)]
    target: Option<f64>,
    /// table, csv, json or html.
    #[arg(long, default_value = "table")]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// "80%" or "80" -> 0.8.
fn parse_percent(text: &str) -> Result<f64, String> {
    let n: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?}: a percentage such as 80%"))?;
    if (0.0..=100.0).contains(&n) {
        Ok(n / 100.0)
    } else {
        Err(format!("{text:?}: between 0% and 100%"))
    }
}

/// Reads the records in bounded memory, with a progress bar when stderr
/// is a terminal, and writes the report.
fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    use hotline::report::{interval, Accumulator, Settings, Source, Thresholds};
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let api = hotline::tools::api_defaults(args.config.as_deref())?;
    let api = api.as_ref();
    let utc_offset = args
        .utc_offset
        .or(api.map(|a| UtcOffset(a.utc_offset.0 * 60)))
        .unwrap_or_default();
    let defaults = Thresholds::default();
    let service_level_ms = args
        .service_level
        .or(api.map(|a| a.service_level))
        .map_or(defaults.service_level_ms, ms);
    let short_abandon_ms = args
        .short_abandon
        .or(api.and_then(|a| a.short_abandon))
        .map(ms)
        .filter(|&ms| ms > 0);
    let target = args
        .target
        .or(api.map(|a| a.service_level_target))
        .unwrap_or(hotline::sla::DEFAULT_SERVICE_LEVEL_TARGET);
    let bound = |text: &Option<String>, which: &str| {
        text.as_deref()
            .map(|t| interval::parse_time(t, utc_offset))
            .transpose()
            .with_context(|| format!("--{which}"))
    };
    let settings = Settings {
        interval: args.interval,
        utc_offset,
        by: args.by,
        thresholds: Thresholds {
            service_level_ms,
            short_abandon_ms,
        },
        from_ms: bound(&args.from, "from")?,
        to_ms: bound(&args.to, "to")?,
        target,
    };
    let files = hotline::tools::records::record_files(&args.paths)?;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut acc = Accumulator::new(settings);
    let stats = hotline::tools::records::for_each_record(
        &files,
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
        |record| acc.add(&record),
    )?;
    bar.finish_and_clear();
    let report = acc.finish(Source {
        files: stats.files,
        records: stats.records,
        skipped_lines: stats.skipped_lines,
        ..Source::default()
    });
    if report.source.skipped_lines > 0 {
        eprintln!(
            "hotline: warning: {} torn or invalid line(s) skipped in {} file(s)",
            report.source.skipped_lines, report.source.files
        );
    }
    if report.source.bad_timestamps > 0 {
        eprintln!(
            "hotline: warning: {} record(s) without a readable invite_at left out",
            report.source.bad_timestamps
        );
    }
    let text = hotline::report::format::render(&report, args.format);
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write to standard output")?;
        }
    }
    Ok(())
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
        Some(p) => hotline::shell::load::config(p)
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
            let setup = match load_config(config.as_ref()).and_then(|(c, origin)| {
                hotline::shell::load::setup(c, &origin).map_err(|e| e.to_string())
            }) {
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
            match runtime.block_on(hotline::shell::run(setup, config.clone())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
        Command::CheckConfig { file } => {
            match load_config(Some(&file)).and_then(|(c, origin)| {
                hotline::shell::load::setup(c, &origin).map_err(|e| e.to_string())
            }) {
                Ok(setup) => {
                    if let Err(e) = hotline::shell::tls::check(&setup.config) {
                        return fail(&format!("{}: {e}", file.display()));
                    }
                    // The database's URL and its TLS files (without the
                    // URL, which may hold a password).
                    if let Some(url) = &setup.config.store.url {
                        use hotline::shell::store::postgres::tls::PgTarget;
                        if let Err(e) = PgTarget::parse(url) {
                            let at = setup.config.source.at("store.url", e.to_string());
                            return fail(&format!("{}: {at}", file.display()));
                        }
                    }
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
            match hotline::shell::voicemail_store::read_index(&dir) {
                Ok((records, skipped)) => {
                    if records.is_empty() {
                        println!("no messages in {}", dir.display());
                    } else {
                        print!("{}", hotline::tools::voicemail_list::format_table(&records));
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
        Command::Report(args) => match run_report(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("{e:#}")),
        },
        Command::Campaign(args) => match hotline::tools::campaign_cli::run(args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(f) => {
                eprintln!("hotline: {}", f.message);
                ExitCode::from(f.code)
            }
        },
        Command::HashPassword => {
            use hotline::tools::hash_password::{hash, read_password};
            match read_password().and_then(|p| hash(&p)) {
                Ok(phc) => {
                    println!("{phc}");
                    ExitCode::SUCCESS
                }
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
