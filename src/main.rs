//! The `rkubelet` binary: flags, logging, build, run, drain.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rkubelet::app::{App, AppError};
use rkubelet::cli::{Cli, Command};
use rkubelet::config::Config;
use rkubelet::ctl;
use rkubelet::runtime::RuntimeError;
use tokio_util::sync::CancellationToken;

/// BSD sysexits: bad usage, and a service we need is unavailable.
const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    rkubelet::memory::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Run) => {}
        Some(Command::Validate(args)) => return validate(&args),
        Some(Command::Completion { shell }) => {
            return written(ctl::docs::completion(shell, &mut std::io::stdout().lock()))
        }
        Some(Command::Man) => return written(ctl::docs::man(&mut std::io::stdout().lock())),
        Some(Command::Kubeconfig(args)) => return kubeconfig(&args),
        Some(Command::Exec(args)) => return stream(&args.stream, &args.command),
        Some(Command::Attach(args)) => return stream(&args, &[]),
        Some(command) => return client(command),
    }
    let config = match Config::from_args(&cli.daemon) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rkubelet: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    rkubelet::logging::init(config.log_format, config.verbosity);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rkubelet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// The exit code of a command that only writes to stdout.
fn written(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkubelet: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A single-threaded runtime for the sub-commands; `None` (reported) if it
/// cannot start.
fn command_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("rkubelet: cannot start the async runtime: {e}");
            None
        }
    }
}

/// `rkubelet validate`: 0 when every object is OK, 1 otherwise, 64 on bad usage.
fn validate(args: &rkubelet::cli::ValidateArgs) -> ExitCode {
    let Some(runtime) = command_runtime() else {
        return ExitCode::FAILURE;
    };
    let mut out = std::io::stdout().lock();
    match runtime.block_on(rkubelet::ctl::validate::run(args, &mut out)) {
        Ok(summary) if summary.all_ok() => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!(
                "rkubelet: {} OK, {} rejected, {} with errors",
                summary.ok, summary.rejected, summary.errors
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("rkubelet: {e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// `rkubelet kubeconfig`: prints a kubeconfig for the authenticated port.
fn kubeconfig(args: &rkubelet::cli::KubeconfigArgs) -> ExitCode {
    let node = rkubelet::node::resolve_name(None).unwrap_or_else(|_| "rkubelet".into());
    let built = rkubelet::api::secure::kubeconfig::build(
        &rkubelet::api::secure::kubeconfig::KubeconfigArgs {
            root_dir: args.root_dir.clone(),
            address: args.address,
            port: args.port,
            token_auth_file: args.token_auth_file.clone(),
            certificate_authority: args.certificate_authority.clone(),
            name: format!("rkubelet-{node}"),
        },
    );
    match built {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rkubelet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rkubelet exec` / `attach`: ends with the remote command's exit code.
fn stream(args: &rkubelet::cli::StreamArgs, command: &[String]) -> ExitCode {
    let Some(runtime) = command_runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(ctl::stream::run(args, command));
    // A blocked read of stdin must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client sub-command against a daemon's API.
fn client(command: Command) -> ExitCode {
    let Some(runtime) = command_runtime() else {
        return ExitCode::FAILURE;
    };
    let mut out = std::io::stdout().lock();
    let result = runtime.block_on(async {
        match &command {
            Command::Get(a) => ctl::get(a, &mut out).await,
            Command::Describe(a) => ctl::describe(a, &mut out).await,
            Command::Logs(a) => ctl::logs(a, &mut out).await,
            Command::Top(a) => ctl::top::run(a, &mut out).await,
            Command::Restart(a) => ctl::secure::restart(a, &mut out).await,
            Command::Create(a) => ctl::secure::create_job(a, &mut out).await,
            Command::PortForward(a) => ctl::portforward::run(a).await,
            Command::Cp(a) => ctl::cp::run(a).await,
            Command::Run
            | Command::Validate(_)
            | Command::Completion { .. }
            | Command::Man
            | Command::Kubeconfig(_)
            | Command::Exec(_)
            | Command::Attach(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> ExitCode {
    // The handlers are installed once, first: a signal that arrives after
    // the API answers but before the daemon waits for it (tests send
    // SIGTERM as soon as the API is up) must not be lost.
    let mut signals = Signals::install();
    // Building waits for Docker as long as it takes; a signal ends the wait.
    let built = tokio::select! {
        built = App::build(config) => built,
        _ = signals.recv() => {
            tracing::info!("stopping rkubelet before it started");
            return ExitCode::SUCCESS;
        }
    };
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            eprintln!("rkubelet: {e}");
            return match e {
                AppError::Runtime(RuntimeError::Unavailable(_)) => ExitCode::from(EX_UNAVAILABLE),
                _ => ExitCode::FAILURE,
            };
        }
    };
    if let Some(addr) = app.api_address() {
        tracing::info!(%addr, "read-only API listening");
    }
    if let Some(addr) = app.secure_address() {
        tracing::info!(%addr, "authenticated API listening (HTTPS)");
    }
    let shutdown = CancellationToken::new();
    let mut tasks = app.spawn(shutdown.clone());
    signals.recv().await;
    tracing::info!("stopping rkubelet; pods keep running");
    shutdown.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop in time");
    }
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT, listened for from the moment they are installed.
struct Signals {
    /// `None` when the handlers could not be installed: the defaults
    /// (terminate) stay in force.
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => None,
        };
        Signals { streams }
    }

    /// Waits for the next SIGTERM or SIGINT (forever without handlers).
    async fn recv(&mut self) {
        let Some((term, int)) = self.streams.as_mut() else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
