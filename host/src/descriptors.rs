//! File descriptors for the reports: the soft limit is raised to the hard
//! one at the start (as servers do), and a few descriptors are held back
//! until the end, so a run whose VUs use up the rest can still write its
//! results.

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
}
