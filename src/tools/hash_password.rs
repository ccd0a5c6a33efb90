//! `hotline hash-password`: reads a password from standard input (its
//! first line; not echoed on a terminal) and prints its Argon2id PHC
//! string, for `[[web.users]] password_hash` or an agent's
//! `web_password_hash`.
//!
//! ```sh
//! hotline hash-password                       # type it, then Enter
//! printf %s "$PASSWORD" | hotline hash-password
//! ```

use std::io::{BufRead, IsTerminal, Write};

use argon2::password_hash::PasswordHasher;
use argon2::Argon2;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HashError {
    #[error("no password given on standard input")]
    Empty,
    #[error("cannot read the password: {0}")]
    Read(#[from] std::io::Error),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// The Argon2id PHC string of `password`, with the crate's default
/// parameters (m = 19 MiB, t = 2, p = 1: OWASP's recommendation) and a
/// random 128-bit salt from the OS.
pub fn hash(password: &str) -> Result<String, HashError> {
    if password.is_empty() {
        return Err(HashError::Empty);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

/// The first line of standard input, without its line ending. On a
/// terminal the prompt goes to stderr and the typing is not echoed.
pub fn read_password() -> Result<String, HashError> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut line = String::new();
    if terminal {
        eprint!("Password (not shown): ");
        let _ = std::io::stderr().flush();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        }
        let read = stdin.lock().read_line(&mut line);
        if let Some(saved) = &saved {
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
        }
        eprintln!();
        read?;
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    Ok(password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies() {
        let a = hash("supervisor").expect("hash");
        let b = hash("supervisor").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a salt of its own each time");
        assert!(crate::config::web::check_password_hash(&a).is_ok());
        assert!(crate::config::web::verify_password(&a, "supervisor"));
        assert!(!crate::config::web::verify_password(&a, "supervisor "));
        assert!(matches!(hash(""), Err(HashError::Empty)));
    }
}
