//! File descriptors for the reports and the run: the soft limit is raised
//! to the hard one at the start (as servers do), a few descriptors are held
//! back until the end, so a run whose VUs use up the rest can still write
//! its results, and the web UI and `/metrics` servers may hold only a small
//! share of the limit (the rest is the run's).

use std::fs::File;

/// Descriptors held back for the reports.
const RESERVED: usize = 16;

/// Descriptors kept open until the reports are written.
#[derive(Debug)]
pub struct Reserve(Vec<File>);

impl Reserve {
    /// Raise the soft `RLIMIT_NOFILE` to the hard limit and hold back
    /// [`RESERVED`] descriptors (best effort: none when none are left).
    pub fn take() -> Reserve {
        raise_limit();
        Reserve(
            (0..RESERVED)
                .map_while(|_| File::open("/dev/null").ok())
                .collect(),
        )
    }

    /// Give the held descriptors back, for the reports.
    pub fn release(&mut self) {
        self.0.clear();
    }

    /// How many descriptors are held.
    pub fn held(&self) -> usize {
        self.0.len()
    }
}

/// The share of the descriptor limit one server's connections may hold:
/// one sixteenth (so two servers leave the run seven eighths).
const SERVER_SHARE: u64 = 16;

/// How many connections a server that wants `wanted` may hold: at most
/// `wanted`, and at most a sixteenth of the (raised) descriptor limit, at
/// least 1.
pub fn server_share(wanted: usize) -> usize {
    raise_limit();
    let share = usize::try_from(soft_limit() / SERVER_SHARE).unwrap_or(usize::MAX);
    wanted.min(share).max(1)
}

#[cfg(unix)]
fn soft_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        // rlim_t is u64 on Linux, not on every Unix.
        #[allow(clippy::unnecessary_cast)]
        let current = limit.rlim_cur as u64;
        current
    } else {
        1024
    }
}

#[cfg(not(unix))]
fn soft_limit() -> u64 {
    u64::MAX
}

#[cfg(unix)]
fn raise_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(not(unix))]
fn raise_limit() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_held_and_released() {
        let mut reserve = Reserve::take();
        assert_eq!(reserve.held(), RESERVED);
        reserve.release();
        assert_eq!(reserve.held(), 0);
    }

    #[test]
    fn a_server_gets_a_small_share_of_the_limit() {
        let share = server_share(usize::MAX);
        assert!(share >= 1);
        assert!(share as u64 <= soft_limit() / SERVER_SHARE + 1, "{share}");
        assert_eq!(server_share(3), 3.min(share));
    }
}
