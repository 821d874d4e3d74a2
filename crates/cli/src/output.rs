//! How results reach people and scripts: aligned tables and local times on stdout for
//! people, JSON for scripts, `error: …` plus a hint on stderr, spinners only on a
//! terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use cc_client::ClientError;
use chrono::{DateTime, Local, Utc};
use indicatif::{ProgressBar, ProgressStyle};

/// `println!` for results that does not panic when stdout is closed early (piped into
/// `head`, or a script that stopped reading after the line it wanted): the command
/// carries on and finishes its work, which matters for `camera claim` completing a
/// pairing after its reader went away.
macro_rules! say {
    () => {{
        $crate::output::write_line(format_args!(""));
    }};
    ($($arg:tt)*) => {{
        $crate::output::write_line(format_args!($($arg)*));
    }};
}
pub(crate) use say;

/// Writes and flushes one line to stdout; false when nobody reads it any more.
pub fn write_line(line: std::fmt::Arguments<'_>) -> bool {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            tracing::warn!("cannot write the output: {e}");
            false
        }
    }
}

/// Prints an error chain as `error: …`, with a hint for the failures people can fix.
pub fn report_error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
    let code = e
        .chain()
        .find_map(|cause| cause.downcast_ref::<ClientError>())
        .and_then(ClientError::problem_code);
    let hint = match code {
        Some("unauthenticated") => Some(
            "your session has ended; log in again with `closedcircuit account login --email EMAIL`",
        ),
        Some("second_factor_required") => Some("pass your authenticator code with --totp CODE"),
        Some("step_up_required") => {
            Some("this account requires verifying again before video plays on this session")
        }
        _ => None,
    };
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A time in the viewer's time zone.
pub fn local_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A byte count for people: `812 B`, `64.2 KiB`, `3.1 MiB`.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

/// Prints JSON for scripts.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Draws `text` as a QR code on the terminal (light modules on dark, for dark terminals
/// and light ones alike); a text too long for a QR code is only logged.
pub fn print_qr(text: &str) {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(qr) => say!(
            "{}",
            qr.render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .build()
        ),
        Err(e) => tracing::warn!("cannot draw a QR code: {e}"),
    }
}

/// A spinner on stderr while waiting, or nothing when stderr is not a terminal.
pub fn spinner(message: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Asks a yes/no question on the terminal; anything but yes is no.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
