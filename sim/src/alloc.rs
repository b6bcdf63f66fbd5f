//! Process-wide allocator settings for long runs.
//!
//! glibc's `malloc` serves every block above its mmap threshold (128 KiB at start, raised
//! only as mapped blocks are freed) with a fresh `mmap`, and hands freed memory at the top
//! of the heap back to the kernel beyond its trim threshold (128 KiB). The engine
//! allocates and frees tensors of that size and far larger millions of times (fine-tuning
//! a language model makes logits of batch × window × vocabulary floats every step), so
//! each one cost page faults and system calls: `scenarios/scale.toml` spent 130 s of
//! its 451 CPU seconds in the kernel, with 53 million page faults, nearly all under the LM
//! fine-tuning's reshapes, gathers and scatters (`perf record -e page-faults`). With
//! both thresholds at 1 GiB, freed blocks are reused instead: 11.5 s in the kernel, 0.95
//! million page faults, 280 s instead of 405 s of wall time, the same digest
//! (`/usr/bin/time -v olsim run scenarios/scale.toml`, 2-vCPU machine).
//!
//! Those settings only help where the main arena (the heap, which grows without limit)
//! serves the allocation. The engine trains models concurrently on rayon worker threads,
//! and glibc gives other threads their own arenas made of 64 MiB heaps, which serve any
//! larger block (a language model's logits) with a fresh `mmap` whatever the threshold:
//! language-model fine-tuning on a worker thread took 3 times as long (40 s against 13 s
//! in a two-epoch cut of `scale.toml`). One arena for every thread keeps every block in the
//! main heap. Results do not depend on this; only speed does.

/// Blocks up to this size come from the heap, not from a fresh `mmap`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 30;

/// Free memory kept at the top of the heap before it is returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Arenas: one, the main heap, for every thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 1;

/// Keeps freed memory for reuse (see the module docs). Call once at the start of `main`,
/// before any thread starts; a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before other
    // threads exist, and invalid values are rejected by returning 0, never undefined.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
