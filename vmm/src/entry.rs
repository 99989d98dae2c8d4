//! The `p2pvm` command's entry point, shared by the `p2pvm` binary and the
//! end-to-end tests' copy of it.

use std::io::Write;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Parses the command line, runs the command and exits the process with
/// its status. Bad input gets one line on stderr and a non-zero status.
pub fn main() -> ! {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|f, r| writeln!(f, "p2pvm: {}", r.args()))
        .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(
                    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    },
                );
            }
            // One line: clap's first line names the problem.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "p2pvm: {} (see 'p2pvm --help')",
                first.trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
    };
    let result = match cli.command {
        Command::Run(args) => crate::run::run(args),
        Command::HostRun(args) => crate::run::host_run(args),
        Command::Topology(args) => crate::run::topology(args),
        Command::Images(args) => crate::run::images(args),
        Command::Test(args) => crate::suite::run(args),
        Command::Ctl(args) => crate::control::ctl(&args.socket, &args.command, &args.args),
        Command::Stats(args) => crate::control::stats(&args.socket),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("p2pvm: error: {e}");
            match e {
                crate::Error::Usage(_) => 2,
                _ => 1,
            }
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
