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

/// Lowers the calling thread's scheduling priority to the lowest (`nice
/// 19`), so that on busy cores it yields to the threads serving clients
/// and runs on what they leave. Linux only; elsewhere this does nothing.
/// Returns whether the priority was changed.
pub fn lower_this_thread_priority() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn gettid() -> i32;
            fn setpriority(which: u32, who: u32, prio: i32) -> i32;
        }
        const PRIO_PROCESS: u32 = 0;
        // SAFETY: `gettid` has no preconditions; `setpriority` on
        // PRIO_PROCESS with a thread id changes only that thread's nice
        // value (Linux semantics) and touches no memory of ours.
        unsafe {
            let tid = gettid();
            u32::try_from(tid).is_ok_and(|tid| setpriority(PRIO_PROCESS, tid, 19) == 0)
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
