//! The command line: argument parsing, exit codes, and the headless
//! commands (`run`, `retry`, `validate` and `daemon` in files of their
//! own). Exit codes: 0 ok, 1 a run failed or was partial, cancelled or
//! blocked, 2 bad usage or config.

/// `println!` for the CLI's output: a reader that closes the pipe early
/// (`syncdeck history | head`) ends the process quietly with 141, as it
/// ends `cat`, instead of a panic. Anything the command had to do is done by then: the
/// CLI prints after the work (a run's summary once it is recorded).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::print_line(format_args!($($arg)*))
    };
}

/// Writes one line on stdout; see [`out!`].
pub(crate) fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            // 141, as a shell reports a program ended by SIGPIPE (`cat`).
            std::process::exit(141);
        }
        eprintln!("syncdeck: cannot write the output: {error}");
        std::process::exit(1);
    }
}

mod daemon;
mod progress;
mod report;
mod retry;
mod run;
mod summaries;
mod validate;

pub use daemon::DAEMON_STOP_GRACE;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{self, Config, ConfigError, LogFormat, Resolve};
use crate::engine::{Engine, TaskResult};
use crate::logging::{self, StderrLogs};

#[derive(Debug, Parser)]
#[command(
    name = "syncdeck",
    version,
    about = "Operations console and engine for data syncs"
)]
struct Cli {
    /// Config file (default: $SYNCDECK_CONFIG, then ./syncdeck.toml)
    #[arg(short, long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Watch only: the console starts, retries, cancels and schedules
    /// nothing; `run`, `retry`, `abandon` and `daemon` refuse
    #[arg(long, global = true)]
    read_only: bool,
    /// Mouse in the console: click selects a row, the wheel scrolls
    /// (default: [console] mouse, else off)
    #[arg(long)]
    mouse: bool,
    /// Log lines as text or as JSON objects, on stderr and in the log file
    /// (default: [engine] log_format, else text)
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the console (the default)
    Tui {
        /// Mouse in the console: click selects a row, the wheel scrolls
        /// (default: [console] mouse, else off)
        #[arg(long)]
        mouse: bool,
    },
    /// Run tasks headless, dependencies first
    Run(RunArgs),
    /// Show what a run of TASK would copy or skip, and why
    Plan {
        /// The task to plan (an id from the config)
        task: String,
        /// The logical date for {{ execution_date }} (YYYY-MM-DD)
        #[arg(long)]
        execution_date: Option<NaiveDate>,
        /// Print the plan as one JSON object on stdout
        #[arg(long)]
        json: bool,
        /// List the files the run would skip too, not only their count
        #[arg(long)]
        all: bool,
    },
    /// Check the config and resolve its credential references; lists every
    /// problem found (up to 20)
    Validate,
    /// Past runs, newest first
    History {
        /// Only the runs of this task (default: all tasks)
        task: Option<String>,
        /// How many runs to show
        #[arg(long, default_value_t = 20, value_name = "N", value_parser = number_of_runs)]
        limit: usize,
        /// Print one JSON object per run on stdout
        #[arg(long)]
        json: bool,
    },
    /// Failed files and batches still pending
    Errors {
        /// Only the items of this task (default: all tasks)
        task: Option<String>,
        /// Include resolved, abandoned and gone items
        #[arg(long)]
        all: bool,
        /// Print one JSON object per item on stdout
        #[arg(long)]
        json: bool,
    },
    /// Retry failed items of TASK: all of them (--all-failed) or some (--batch ID…)
    Retry {
        /// The task whose failed items to retry
        task: String,
        /// Ids of the failed items to retry (from `syncdeck errors`)
        #[arg(long = "batch", alias = "item", value_name = "ID", num_args = 1..)]
        batch: Vec<i64>,
        /// Retry every pending failed item of TASK
        #[arg(long, conflicts_with = "batch")]
        all_failed: bool,
        /// Print the retry's JSON summary on stdout
        #[arg(long)]
        json: bool,
    },
    /// Give up on failed items of TASK: retries skip them and `errors` no
    /// longer lists them (`errors --all` shows them as abandoned)
    Abandon {
        /// The task whose failed items to abandon (also one no longer in the config)
        task: String,
        /// Ids of the failed items to abandon (from `syncdeck errors`)
        #[arg(long = "item", alias = "batch", value_name = "ID", num_args = 1..)]
        items: Vec<i64>,
        /// Abandon every pending failed item of TASK
        #[arg(long, conflicts_with = "items")]
        all_failed: bool,
    },
    /// Forget TASK's watermark: its next run reads the whole source again
    /// (rows already in the target are compared, not rewritten)
    Reset {
        /// The incremental table sync or HTTP sync whose watermark to forget
        task: String,
    },
    /// Run the schedules without the console, until SIGTERM or ctrl-c
    Daemon {
        /// Serve /metrics, /healthz and /readyz on HOST:PORT
        /// (default: [engine] metrics_addr; none when unset)
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; view it with `man -l -`)
    Man,
    /// Print the config's task ids, one a line (for shell completion)
    #[command(hide = true)]
    TaskIds,
    /// Print the JSON Schema of the config file, for editors (taplo)
    Schema,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Tasks to run (all when none are given)
    tasks: Vec<String>,
    /// Show the plan of each task instead of running it
    #[arg(long)]
    dry_run: bool,
    /// Do not run the tasks' dependencies first
    #[arg(long)]
    no_deps: bool,
    /// Print one JSON summary line per run on stdout
    #[arg(long)]
    json: bool,
    /// The logical date for {{ execution_date }} (YYYY-MM-DD; default today, UTC)
    #[arg(long)]
    execution_date: Option<NaiveDate>,
}

/// `--limit N`: a count of runs, said in words when it is not one.
fn number_of_runs(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("`{text}` is not a number of runs; give a whole number like 50"))
}

/// A failure with the exit code it should give.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self { code: 1, error }
    }
}

fn usage(message: String) -> Failure {
    Failure {
        code: 2,
        error: anyhow::anyhow!(message),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("syncdeck: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let message = format!("{:#}", failure.error);
            eprintln!("syncdeck: {}", config::redact(&message));
            ExitCode::from(failure.code)
        }
    }
}

fn load(cli_config: Option<&Path>, resolve: Resolve) -> Result<Config, Failure> {
    let path = config::find_config(cli_config)?;
    Ok(config::load(&path, resolve)?)
}

async fn open_state(config: &Config) -> Result<Arc<dyn crate::state::StateStore>, Failure> {
    match crate::state::open(&config.engine.state, &config.base_dir).await {
        Ok(store) => Ok(store),
        Err(error @ crate::state::StateError::Unsupported(_)) => {
            Err(usage(format!("{}: {error}", config.file.display())))
        }
        Err(error) => Err(anyhow::Error::from(error)
            .context("cannot open the state store")
            .into()),
    }
}

/// Opens the state store for `history` and `errors`. An SQLite store this
/// user cannot write (a read-only file, folder or mount, another user's
/// store) is opened read-only instead: reading needs no write access.
async fn open_state_for_reading(
    config: &Config,
) -> Result<(Arc<dyn crate::state::StateStore>, bool), Failure> {
    let opened = open_state(config).await;
    let Some(path) = sqlite_path(config) else {
        return opened.map(|store| (store, true));
    };
    match opened {
        Ok(store) => Ok((store, true)),
        Err(failure) if failure.code == 2 || !path.exists() => Err(failure),
        Err(failure) => match crate::state::SqliteStateStore::open_read_only(&path).await {
            Ok(store) => Ok((Arc::new(store), false)),
            Err(_) => Err(failure),
        },
    }
}

/// The file of an SQLite state store (`sqlite:PATH`, relative to the config).
fn sqlite_path(config: &Config) -> Option<PathBuf> {
    let path = Path::new(
        config
            .engine
            .state
            .strip_prefix("sqlite:")?
            .trim_start_matches("//"),
    );
    Some(if path.is_absolute() {
        path.to_path_buf()
    } else {
        config.base_dir.join(path)
    })
}

async fn open_engine(config: Config) -> Result<Arc<Engine>, Failure> {
    let state = open_state(&config).await?;
    let engine = Engine::new(Arc::new(config), state, crate::kinds::all())
        .await
        .context("cannot start the engine")?;
    Ok(engine)
}

/// Logging for a command: the `--log-format` flag wins over the config.
fn init_logs(config: &Config, stderr: StderrLogs) -> logging::LoggingGuard {
    logging::init(
        &config.resolve_path(&config.engine.log_dir),
        stderr,
        log_format_flag().unwrap_or(config.engine.log_format),
    )
}

/// `--log-format`, set once from the command line before any command runs
/// (every command loads its own config, so the flag cannot ride on it).
static LOG_FORMAT_FLAG: std::sync::OnceLock<Option<LogFormat>> = std::sync::OnceLock::new();

fn log_format_flag() -> Option<LogFormat> {
    LOG_FORMAT_FLAG.get().copied().flatten()
}

/// Appended to the bash completion clap generates: the commands that take
/// task ids complete them from the config (`-c` if given), through the
/// hidden `task-ids` command.
const BASH_TASK_IDS: &str = r#"
_syncdeck_task_ids() {
    local config=() i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -c|--config) config=(-c "${COMP_WORDS[i+1]}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${config[@]}" task-ids 2>/dev/null
}
_syncdeck_with_task_ids() {
    local cur="${COMP_WORDS[COMP_CWORD]}" word
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case "$word" in
            run|plan|history|errors|retry|abandon)
                if [[ "$cur" != -* ]]; then
                    COMPREPLY=($(compgen -W "$(_syncdeck_task_ids)" -- "$cur"))
                    return 0
                fi
                ;;
        esac
    done
    _syncdeck "$@"
}
complete -F _syncdeck_with_task_ids -o bashdefault -o default syncdeck
"#;

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let config_path = cli.config.as_deref();
    let _ = LOG_FORMAT_FLAG.set(cli.log_format);
    if cli.read_only {
        let (runs, changes) = ("starts runs", "changes the state store");
        let refused = match &cli.command {
            Some(Command::Run(args)) if !args.dry_run => Some(("run", runs)),
            Some(Command::Retry { .. }) => Some(("retry", runs)),
            Some(Command::Abandon { .. }) => Some(("abandon", changes)),
            Some(Command::Reset { .. }) => Some(("reset", changes)),
            Some(Command::Daemon { .. }) => Some(("daemon", runs)),
            _ => None,
        };
        if let Some((command, what)) = refused {
            return Err(usage(format!(
                "--read-only only watches, and `{command}` {what}; drop --read-only to do it, or use `syncdeck --read-only` to watch in the console"
            )));
        }
    }
    match cli.command {
        None => console(config_path, cli.read_only, cli.mouse).await,
        Some(Command::Tui { mouse }) => {
            console(config_path, cli.read_only, cli.mouse || mouse).await
        }
        Some(Command::Daemon { metrics_addr }) => daemon::run(config_path, metrics_addr).await,
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "syncdeck",
                &mut std::io::stdout(),
            );
            if shell == clap_complete::Shell::Bash {
                print!("{BASH_TASK_IDS}");
            }
            Ok(0)
        }
        Some(Command::TaskIds) => {
            let config = load(config_path, Resolve::WithoutCredentials)?;
            for task in &config.tasks {
                out!("{}", task.id);
            }
            Ok(0)
        }
        Some(Command::Schema) => {
            let schema = serde_json::to_string_pretty(&config::json_schema())
                .context("cannot write the schema")?;
            out!("{schema}");
            Ok(0)
        }
        Some(Command::Man) => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                // `syncdeck man | head` closes the pipe early: not an error.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
                result => {
                    result.context("cannot write the manual page")?;
                    Ok(0)
                }
            }
        }
        Some(Command::Validate) => validate::run(config_path),
        Some(Command::Run(args)) => run::run(config_path, args).await,
        Some(Command::Plan {
            task,
            execution_date,
            json,
            all,
        }) => plan(config_path, &task, execution_date, json, all).await,
        Some(Command::History { task, limit, json }) => {
            let config = load(config_path, Resolve::WithoutCredentials)?;
            let _logs = init_logs(&config, StderrLogs::Warnings);
            let (state, writable) = open_state_for_reading(&config).await?;
            // A store opened read-only, or one SQLite opened read-only because
            // the file is write-protected, shows runs as they were recorded.
            if writable && let Err(error) = state.mark_interrupted().await {
                tracing::warn!(%error, "runs of stopped processes could not be marked interrupted; they may still show as running");
            }
            let runs = state
                .runs(task.as_deref(), limit)
                .await
                .context("cannot read the run history")?;
            // A task removed from the config keeps its history; an id that
            // is in neither is a typo, not an empty history.
            if let Some(task) = task.as_deref()
                && runs.is_empty()
                && config.task(task).is_none()
            {
                return Err(usage(config.unknown_task(task)));
            }
            report::history(&runs, &report::Kinds::of(&config), json);
            Ok(0)
        }
        Some(Command::Errors { task, all, json }) => {
            let config = load(config_path, Resolve::WithoutCredentials)?;
            let _logs = init_logs(&config, StderrLogs::Warnings);
            let (state, _) = open_state_for_reading(&config).await?;
            let items = state
                .failed_items(task.as_deref(), !all)
                .await
                .context("cannot read failed items")?;
            if let Some(task) = task.as_deref()
                && config.task(task).is_none()
                && state
                    .failed_items(Some(task), false)
                    .await
                    .context("cannot read failed items")?
                    .is_empty()
            {
                return Err(usage(config.unknown_task(task)));
            }
            report::failed_items(&items, json);
            Ok(0)
        }
        Some(Command::Retry {
            task,
            batch,
            all_failed,
            json,
        }) => retry::run(config_path, task, batch, all_failed, json).await,
        Some(Command::Abandon {
            task,
            items,
            all_failed,
        }) => retry::abandon(config_path, task, items, all_failed).await,
        Some(Command::Reset { task }) => retry::reset(config_path, task).await,
    }
}

async fn console(config_path: Option<&Path>, read_only: bool, mouse: bool) -> Result<u8, Failure> {
    let config = load(config_path, Resolve::Everything)?;
    if !std::io::stdout().is_terminal() {
        return Err(usage(
            "the console needs a terminal; use `syncdeck run` for headless runs".into(),
        ));
    }
    let buffer = crate::logging::LogBuffer::new(crate::logging::DEFAULT_LOG_CAPACITY);
    let _logs = init_logs(&config, StderrLogs::Buffer(buffer.clone()));
    let engine = open_engine(config).await?;
    if !read_only {
        engine.spawn_adoption();
    }
    crate::console::run(engine, buffer, read_only, mouse)
        .await
        .context("console")?;
    Ok(0)
}

/// 0 when every run succeeded (or was handed to a remote system that
/// runs it, `submitted`), else 1.
fn exit_code(results: &[TaskResult]) -> u8 {
    let fine = |result: &TaskResult| {
        result.is_success()
            || matches!(result, TaskResult::Ran(record) if record.status == crate::run::RunStatus::Submitted)
    };
    if results.iter().all(fine) { 0 } else { 1 }
}

async fn plan(
    config_path: Option<&Path>,
    task: &str,
    execution_date: Option<NaiveDate>,
    json: bool,
    all: bool,
) -> Result<u8, Failure> {
    let config = load(config_path, Resolve::Everything)?;
    if config.task(task).is_none() {
        return Err(usage(config.unknown_task(task)));
    }
    plan_with(&config, task, execution_date, json, all).await
}

async fn plan_with(
    config: &Config,
    task_id: &str,
    execution_date: Option<NaiveDate>,
    json: bool,
    list_skipped: bool,
) -> Result<u8, Failure> {
    let Some(task) = config.task(task_id) else {
        return Err(usage(config.unknown_task(task_id)));
    };
    let request = crate::task::PlanRequest {
        task_id: task.id.clone(),
        execution_date: execution_date.unwrap_or_else(|| chrono::Utc::now().date_naive()),
        base_dir: config.base_dir.clone(),
        state: open_state(config).await?,
        list_skipped,
    };
    let body = crate::kinds::all().body(task);
    let plan = body
        .plan(&request)
        .await
        .map_err(|error| anyhow::anyhow!("task `{task_id}`: {error}"))?;
    report::plan(&plan, json);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `syncdeck help run` and friends: an argument without a line of help
    /// leaves the operator guessing (as `--json` and `<TASK>` once did).
    #[test]
    fn every_argument_of_every_command_has_help() {
        let mut missing = Vec::new();
        let mut command = Cli::command();
        command.build();
        for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{} {id}", sub.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn retry_parses_without_a_choice_so_it_can_say_how_to_choose() {
        let cli = Cli::try_parse_from(["syncdeck", "retry", "only"]);
        assert!(cli.is_ok(), "parsed; the command explains --all-failed");
    }
}
