//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps memory a process has freed for its own later use, so after a busy
//! hour the server's footprint would stay at its peak even with every room empty. When a room
//! closes (rarely, compared with packets) we ask it to return free pages from all its arenas.

/// Returns free heap pages to the system, where the allocator supports it.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
    // from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
