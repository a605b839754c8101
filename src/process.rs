//! Facts about this process that both `INFO` and the metrics endpoint
//! report.

/// Resident set size of this process (Linux), in bytes.
pub fn resident_set_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
