//! Process memory tuning: one call at the start of the daemon.
//!
//! A manifest being loaded may need tens of MiB for a moment (up to
//! [`crate::manifest::limits::MAX_BYTES`] of text, held as bytes, a YAML
//! tree, a JSON tree and typed objects). glibc's allocator keeps such
//! memory after it is freed: its mmap threshold rises to the size of the
//! largest freed block, so the next big buffers come from a heap that
//! rarely shrinks, and every thread that allocates gets an arena of its
//! own to keep them in. A fixed threshold gives big buffers back to the
//! system when they are freed, and one arena lets the next load reuse what
//! the last one freed. Measured with a release build and 15 worst-case
//! files (4 MiB ConfigMaps, 24,000-key maps, alias bombs, deep nesting):
//! peak RSS 58–60 MiB with glibc's defaults, 45–49 MiB with these (idle:
//! 12 MiB). The daemon allocates little on its hot paths, and glibc's
//! per-thread caches serve small blocks without taking the arena's lock.

/// Big blocks (at least this many bytes) are mapped and unmapped on their own.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Arenas for all threads together.
const ARENA_MAX: i32 = 1;

/// Applies the tuning above; a no-op where the C library is not glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, ARENA_MAX);
    }
}
