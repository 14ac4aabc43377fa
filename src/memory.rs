//! Process memory tuning: one call at the start of the daemon.
//!
//! A manifest being loaded may need tens of MiB for a moment (up to
//! [`crate::manifest::limits::MAX_BYTES`] of text, held as bytes, a YAML
//! tree, a JSON tree and typed objects). glibc's allocator keeps such
//! memory after it is freed: its mmap threshold rises to the size of the
//! largest freed block, so the next big buffers come from a heap that
//! rarely shrinks, and every thread that allocates gets an arena of its
//! own to keep them in. A fixed threshold and two arenas give big buffers
//! back to the system when they are freed, which keeps the daemon's
//! resident memory near its idle size after a hostile file.

/// Big blocks (at least this many bytes) are mapped and unmapped on their own.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Arenas for all threads together.
const ARENA_MAX: i32 = 2;

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
