//! Reading a password without putting it on the command line (where other users could
//! see it in the process list): standard input, an environment variable, or a prompt.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use zeroize::Zeroizing;

/// The environment variable scripts may set instead of typing the password.
pub const PASSWORD_ENV: &str = "CLOSEDCIRCUIT_PASSWORD";
/// Shortest password accepted at sign-up.
const MIN_LENGTH: usize = 8;

/// How to get the password.
#[derive(clap::Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input (else the
    /// CLOSEDCIRCUIT_PASSWORD environment variable, else a prompt)
    #[arg(long)]
    pub password_stdin: bool,
}

/// Reads the password; `confirm` asks twice at a prompt (sign-up) and checks its length.
pub fn read(args: &PasswordArgs, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    let password = if args.password_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
    } else if let Ok(password) = std::env::var(PASSWORD_ENV) {
        Zeroizing::new(password)
    } else if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat the password: ")?);
            if *first != *again {
                bail!("the two passwords differ");
            }
        }
        first
    } else {
        bail!("no password given: pass --password-stdin, set {PASSWORD_ENV}, or run in a terminal");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    if confirm && password.chars().count() < MIN_LENGTH {
        bail!("choose a password of at least {MIN_LENGTH} characters");
    }
    Ok(password)
}
