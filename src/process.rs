//! Facts about this process that both `INFO` and the metrics endpoint
//! report.

/// Resident set size of this process (Linux), in bytes.
pub fn resident_set_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Hands heap memory that is free again back to the operating system.
///
/// glibc keeps memory freed by large buffers (a client's unfinished 1 MB
/// requests, say) in its arenas for reuse, so the resident set stays high
/// after such clients leave; `malloc_trim` returns the free pages. Other
/// allocators return memory on their own: elsewhere this does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: `malloc_trim` is glibc's documented, thread-safe call that
        // releases free heap pages; it takes the allocator's own locks and
        // touches no memory the program uses.
        unsafe {
            malloc_trim(0);
        }
    }
}
