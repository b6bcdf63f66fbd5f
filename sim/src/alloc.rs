//! Process-wide allocator settings for long runs.
//!
//! glibc's `malloc` serves every block above its mmap threshold (128 KiB at start, raised
//! only as mapped blocks are freed) with a fresh `mmap`, and hands freed memory at the top
//! of the heap back to the kernel beyond its trim threshold. The engine allocates and frees
//! tensors and transaction buffers of that size millions of times, so each one cost page
//! faults and system calls: on `scenarios/scale.toml` at 10% size, 13.6 s of 57.6 s was
//! system time. With the thresholds below the freed blocks are reused: 2.4 s of system
//! time and 45.5 s in all, the same digest (`/usr/bin/time` around `olsim run`, 2-vCPU
//! machine). Results do not depend on it; only speed does.

/// Blocks up to this size come from the heap, not from a fresh `mmap`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 64 << 20;

/// Free memory kept at the top of the heap before it is returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 128 << 20;

/// Keeps freed memory for reuse (see the module docs). Call once at the start of `main`,
/// before any thread starts; a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes two allocator parameters; it is called before other
    // threads exist, and invalid values are rejected by returning 0, never undefined.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
