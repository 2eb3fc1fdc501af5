//! A coroutine that overflows its guarded stack is reported by name, then the process
//! aborts. Run in a child process (this test binary re-executed).

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[inline(never)]
fn recurse(depth: u64, sink: &mut [u8; 512]) -> u64 {
    let mut local = [depth as u8; 512];
    std::hint::black_box(&mut local);
    sink[0] = sink[0].wrapping_add(local[7]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1, &mut local) + std::hint::black_box(1)
}

#[test]
fn overflow_child() {
    if std::env::var_os("SHRAPNEL_OVERFLOW_CHILD").is_none() {
        return;
    }
    shrapnel::Builder::new()
        .name("recursor")
        .stack_size(64 * 1024)
        .spawn(|| recurse(0, &mut [0; 512]))
        .unwrap();
    shrapnel::event_loop();
    unreachable!("the overflow should have aborted the process");
}

#[test]
fn stack_overflow_names_the_coroutine_and_aborts() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHRAPNEL_OVERFLOW_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("coroutine #1 'recursor' overflowed its stack (64 KiB)"),
        "stderr was: {stderr}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr {stderr}",
        out.status
    );
}

#[test]
fn overflow_shared_child() {
    if std::env::var_os("SHRAPNEL_OVERFLOW_SHARED_CHILD").is_none() {
        return;
    }
    // Another shared-stack coroutine parked first, so the run stack changes hands.
    shrapnel::Builder::new()
        .name("parked")
        .shared_stack(true)
        .spawn(|| shrapnel::sleep(std::time::Duration::from_secs(5)))
        .unwrap();
    shrapnel::Builder::new()
        .name("shared-recursor")
        .shared_stack(true)
        .spawn(|| {
            shrapnel::yield_slice();
            recurse(0, &mut [0; 512])
        })
        .unwrap();
    shrapnel::event_loop();
    unreachable!("the overflow should have aborted the process");
}

/// On the shared run stack (256 KiB, the default size), the overflow report names the
/// coroutine that was running on it.
#[test]
fn a_shared_stack_overflow_names_the_running_coroutine() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_shared_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHRAPNEL_OVERFLOW_SHARED_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("coroutine #2 'shared-recursor' overflowed its stack (256 KiB)"),
        "stderr was: {stderr}"
    );
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
}
