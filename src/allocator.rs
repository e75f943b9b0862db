//! The allocator of tally's server: mimalloc, keeping freed memory for reuse.
//!
//! Serving a request allocates and frees many small values (rows, JSON, futures) across
//! worker threads, where glibc's malloc and free were about a quarter of the server's CPU
//! time under load. mimalloc as it comes hands pages freed after a request back to the
//! operating system and faults them in again (zeroed by the kernel) for the next: 2.0–2.3 ms
//! of the server's CPU per by-day request against 1.4–1.6 ms without (docs/OPERATIONS.md).
//! A binary that serves declares [`Allocator`] its global allocator and calls
//! [`keep_freed_memory`] first (the `tally` binary, the serving bench).

use std::ffi::{c_int, c_long};

// links mimalloc's C library, whose options this module sets
extern crate mimalloc;

/// The global allocator of a binary that serves (`#[global_allocator] static A: Allocator =
/// Allocator;`).
pub type Allocator = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's `mi_option_set`, from the C library the `mimalloc` crate links.
    fn mi_option_set(option: c_int, value: c_long);
    /// mimalloc's `mi_option_get`.
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// `mi_option_purge_delay` of the mimalloc 3 that Cargo.lock pins (`libmimalloc-sys`
/// 0.1.49); a test checks it names the option whose default is 1000 ms.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Keeps freed memory for reuse instead of handing it back to the operating system, unless
/// `MIMALLOC_PURGE_DELAY` says otherwise. The resident memory stays at its peak.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads atomically at any time
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // mimalloc 3's purge delay defaults to 1000 ms, no other option to that value
        // SAFETY: reads one of mimalloc's options
        assert_eq!(
            unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) },
            1000
        );
    }
}
