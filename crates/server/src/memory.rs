//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps memory a process has freed for its own later use, so after a busy
//! hour the server's footprint would stay at its peak even with every room empty. Two things
//! are done about it:
//!
//! - When a room closes (rarely, compared with packets) we ask it to return free pages from all
//!   its arenas ([`release_free_memory`]).
//! - Its per-thread caches are switched off at start ([`tune_allocator`]). Each thread's cache
//!   (tcache) and the fast bins hold freed chunks as if they were in use, scattered over the
//!   arenas, so no page they sit on can be returned and the free space around them cannot
//!   merge. Measured with 100 members in rooms of two, then none: the footprint stayed 23–24 %
//!   over idle with the caches and came back within 1–4 % without them, for about 1 % more
//!   instructions per forwarded packet and no measurable CPU time (`BENCHMARKS.md`). glibc
//!   reads these settings only when a program starts, from `GLIBC_TUNABLES`, so the server
//!   starts itself once more with them set.

/// Returns free heap pages to the system, where the allocator supports it.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
    // from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The allocator settings the server runs with: no per-thread cache, no fast bins.
pub const TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0";

/// What `GLIBC_TUNABLES` should be, given its value now (empty when unset); `None` when it is
/// right as it is.
///
/// An operator who sets the thread cache themselves (`glibc.malloc.tcache_count`) is obeyed;
/// other settings of theirs are kept, ours added after them.
pub fn tunables_for(current: &str) -> Option<String> {
    if current.contains("glibc.malloc.tcache_count") {
        None
    } else if current.is_empty() {
        Some(TUNABLES.to_owned())
    } else {
        Some(format!("{current}:{TUNABLES}"))
    }
}

/// Starts this program again with [`TUNABLES`] in effect, unless they already are. Call it
/// first thing in `main`, before any thread exists. It returns only if nothing had to be done
/// or the program could not be started again; then the server runs with the allocator as it
/// is, which costs memory after rooms empty and nothing else.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        // Set on the second start: if the setting were lost on the way (as glibc does for
        // privileged programs), the program must not start itself over and over.
        const STARTED_AGAIN: &str = "FREE4CHAT_ALLOCATOR_TUNED";
        if std::env::var_os(STARTED_AGAIN).is_some() {
            return;
        }
        let current = std::env::var_os("GLIBC_TUNABLES");
        let Some(current) = current.as_deref().map_or(Some(""), |v| v.to_str()) else {
            return;
        };
        let Some(value) = tunables_for(current) else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "free4chat".into());
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(arg0)
            .args(args)
            .env("GLIBC_TUNABLES", value)
            .env(STARTED_AGAIN, "1")
            .exec();
        eprintln!("free4chat: running with the allocator's defaults ({err})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunables_are_added_to_the_operators_and_never_override_theirs() {
        assert_eq!(tunables_for("").as_deref(), Some(TUNABLES));
        assert_eq!(
            tunables_for("glibc.malloc.arena_max=2").unwrap(),
            format!("glibc.malloc.arena_max=2:{TUNABLES}")
        );
        assert_eq!(tunables_for("glibc.malloc.tcache_count=7"), None);
        assert_eq!(tunables_for(TUNABLES), None);
    }
}
