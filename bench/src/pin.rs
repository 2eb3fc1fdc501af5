//! Pinning a plain thread to one CPU, for the peers of benches that pin shrapnel's
//! schedulers (`PerCore::pin`): shrapnel's own pinning is internal to `run_per_core`.

/// Pin the calling thread to `cpu`; on failure (or off Linux) it runs unpinned, with a
/// line on stderr saying so.
pub fn pin_this_thread(cpu: usize) {
    if let Err(e) = try_pin(cpu) {
        eprintln!("shrapnel-bench: thread not pinned to CPU {cpu}: {e}");
    }
}

#[cfg(target_os = "linux")]
fn try_pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(std::io::Error::other("beyond what a cpu_set_t holds"));
    }
    // SAFETY: `cpu` was checked against the set's size just above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t and its size is passed with it.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn try_pin(_cpu: usize) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "pinning is implemented on Linux only",
    ))
}
