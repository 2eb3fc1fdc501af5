//! MmapStack, the pool, the guard table, the overflow report and the mapping limit, several
//! of them in child processes (a guard-page hit aborts).

use super::*;
use crate::sys::altstack::{current_altstack, ensure_altstack};
use shrapnel_core::stack::{BoxedStack, StackAllocator};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// How a forked child ended, and what it wrote to stdout and stderr (one pipe).
struct Child {
    status: ExitStatus,
    output: String,
}

/// Run `action` in a forked child of this test process with stdout and stderr going to a
/// pipe, and wait for it. Forking (rather than running the test binary again) also works
/// under a user-mode emulator such as qemu-aarch64. The child is a copy of this one
/// thread: `action` must not wait for anything another thread of the parent holds, so
/// process-wide setup (the fault handler) is done in the parent before the fork.
fn in_child(action: fn()) -> Child {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let [read_end, write_end] = fds;
    // SAFETY: the child only redirects its output, runs `action` and leaves with _exit,
    // never returning into the test harness; the parent continues normally.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain descriptor operations and setrlimit on valid arguments.
        unsafe {
            libc::close(read_end);
            libc::dup2(write_end, 1);
            libc::dup2(write_end, 2);
            libc::close(write_end);
            // The child crashes on purpose: no core file.
            let limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
        }
        let code = match std::panic::catch_unwind(action) {
            Ok(()) => 0,
            Err(_) => 101,
        };
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent owns both ends; it closes the write end so that reading ends
    // when the child exits, and takes ownership of the read end exactly once.
    let mut pipe = unsafe {
        libc::close(write_end);
        std::fs::File::from_raw_fd(read_end)
    };
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)
        .expect("read the child's output");
    let mut status = 0;
    // SAFETY: waiting for the child forked above; `status` is valid for writes.
    assert_eq!(
        unsafe { libc::waitpid(pid, &mut status, 0) },
        pid,
        "waitpid"
    );
    Child {
        status: ExitStatus::from_raw(status),
        output: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Write to the child's stdout, bypassing the harness's output capture.
fn child_print(text: &str) {
    // SAFETY: `text` is valid for reads of its length.
    unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
}

#[test]
fn size_is_rounded_up_to_the_page_size() {
    let page = sys::page_size();
    let stack = MmapStack::new(MIN_STACK_SIZE + 1).expect("map a small stack");
    assert_eq!(stack.size(), (MIN_STACK_SIZE + 1).next_multiple_of(page));
    assert_eq!(stack.size() % page, 0);
    assert_eq!(stack.base().as_ptr() as usize % 16, 0);
    let (guard_start, guard_len) = stack.guard().expect("an mmap stack has a guard");
    assert_eq!(guard_len, page);
    assert_eq!(guard_start + guard_len, stack.limit().as_ptr() as usize);

    let exact = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
    assert_eq!(exact.size(), DEFAULT_STACK_SIZE);
}

#[test]
fn the_whole_usable_range_is_writable() {
    let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
    let limit = stack.limit().as_ptr();
    // SAFETY: [limit, base) is read/write memory owned by `stack`.
    unsafe {
        limit.write_volatile(1);
        stack.base().as_ptr().sub(1).write_volatile(2);
        assert_eq!(limit.read_volatile(), 1);
        assert_eq!(stack.base().as_ptr().sub(1).read_volatile(), 2);
    }
}

#[test]
fn too_small_is_refused_with_the_minimum() {
    let error = MmapStack::new(4096)
        .err()
        .expect("4 KiB is below the minimum");
    assert_eq!(error, StackError::TooSmall { requested: 4096 });
    let message = error.to_string();
    assert!(message.contains("4096"), "{message}");
    assert!(message.contains("16 KiB"), "{message}");
    let pool = StackPool::new();
    assert_eq!(
        pool.allocate(0).err(),
        Some(StackError::TooSmall { requested: 0 })
    );
}

#[test]
fn a_huge_stack_is_exhausted_not_a_panic() {
    let tib = 1usize << 40;
    let error = MmapStack::new(tib)
        .err()
        .expect("no machine here backs a 1 TiB stack");
    match &error {
        StackError::Exhausted {
            requested, detail, ..
        } => {
            assert_eq!(*requested, tib);
            assert!(detail.contains("smaller stack"), "{detail}");
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert!(error.to_string().contains("1099511627776"), "{error}");
    let overflowing = MmapStack::new(usize::MAX - 1).err();
    assert!(matches!(
        overflowing,
        Some(StackError::Exhausted {
            detail: BEYOND_ADDRESS_SPACE,
            ..
        }) | Some(StackError::Exhausted {
            detail: LARGER_THAN_MEMORY,
            ..
        })
    ));
}

#[test]
fn guards_are_registered_for_the_life_of_the_stack() {
    let before = guard_table::live();
    let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
    let (start, len) = stack.guard().expect("a guard");
    assert_eq!(guard_table::live(), before + 1);
    let hit = guard_table::find(start + len - 1).expect("the guard is registered");
    assert_eq!(hit.start, start);
    assert_eq!(hit.end, stack.limit().as_ptr() as usize);
    assert_eq!(hit.base, stack.base().as_ptr() as usize);
    assert!(guard_table::find(stack.limit().as_ptr() as usize).is_none());
    drop(stack);
    assert_eq!(guard_table::live(), before);
    assert!(guard_table::find(start).is_none());
}

#[test]
fn the_table_grows_past_one_chunk() {
    let stacks: Vec<MmapStack> = (0..300)
        .map(|_| MmapStack::new(MIN_STACK_SIZE).expect("map a small stack"))
        .collect();
    for stack in &stacks {
        let (start, _) = stack.guard().expect("a guard");
        let hit = guard_table::find(start).expect("every guard is registered");
        assert_eq!(hit.base, stack.base().as_ptr() as usize);
    }
}

/// Write one byte to the guard page of a fresh default-size stack.
fn touch_a_guard_page() {
    let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
    let (start, _) = stack.guard().expect("a guard");
    // SAFETY: deliberately not safe: the child process running this exists to fault.
    unsafe { (start as *mut u8).write_volatile(1) };
}

#[test]
fn the_guard_page_faults() {
    let child = in_child(|| {
        // Whatever another test installed, this child sees the default action.
        for &signal in sys::FAULT_SIGNALS {
            // SAFETY: resetting a signal's action to the default.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        touch_a_guard_page();
    });
    let signal = child.status.signal();
    assert!(
        signal.is_some_and(|signal| sys::FAULT_SIGNALS.contains(&signal)),
        "{:?}\n{}",
        child.status,
        child.output
    );
}

#[test]
fn a_guard_hit_is_reported_and_aborts() {
    install_overflow_handler();
    let child = in_child(touch_a_guard_page);
    let text = &child.output;
    assert_eq!(child.status.signal(), Some(libc::SIGABRT), "{text}");
    assert!(text.contains("overflowed its stack (256 KiB)"), "{text}");
    assert!(text.contains("at guard page 0x"), "{text}");
    assert!(text.contains("Builder::stack_size"), "{text}");
}

#[test]
fn other_faults_keep_their_default_action() {
    install_overflow_handler();
    let child = in_child(|| {
        let _stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
        // SAFETY: a fresh PROT_NONE mapping; the write below is meant to fault.
        unsafe {
            let other = libc::mmap(
                ptr::null_mut(),
                sys::page_size(),
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            );
            assert_ne!(other, libc::MAP_FAILED);
            other.cast::<u8>().write_volatile(1);
        }
    });
    let text = &child.output;
    let signal = child.status.signal();
    assert!(
        signal.is_some_and(|signal| sys::FAULT_SIGNALS.contains(&signal)),
        "{:?}\n{text}",
        child.status
    );
    assert!(!text.contains("overflowed"), "{text}");
}

/// Recurse until the stack runs out.
extern "C" fn recurse_forever() {
    fn deeper(depth: usize) -> usize {
        // Never true: 256 KiB holds a few hundred frames. It only tells the compiler
        // that the recursion has an end.
        if depth == usize::MAX {
            return 0;
        }
        let frame = std::hint::black_box([depth as u8; 512]);
        deeper(depth + 1) + frame[depth % 512] as usize
    }
    std::hint::black_box(deeper(0));
}

/// What the recursion child prints where it cannot run a function on another stack.
const NO_RUN_ON_STACK: &str = "run_on_stack is not available on this OS";

#[test]
fn recursion_on_a_guarded_stack_is_reported_on_the_altstack() {
    install_overflow_handler();
    let child = in_child(|| {
        // The child is a copy of this test's thread, which may have no altstack yet.
        ensure_altstack().expect("an alternate signal stack");
        let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
        if !sys::run_on_stack(stack.limit().as_ptr(), stack.size(), recurse_forever) {
            child_print(NO_RUN_ON_STACK);
        }
    });
    let text = &child.output;
    if child.status.success() && text.contains(NO_RUN_ON_STACK) {
        return;
    }
    assert_eq!(child.status.signal(), Some(libc::SIGABRT), "{text}");
    assert!(text.contains("overflowed its stack (256 KiB)"), "{text}");
}

#[test]
fn ensure_altstack_installs_one_per_thread() {
    std::thread::spawn(|| {
        ensure_altstack().expect("an alternate signal stack");
        let (start, size) = current_altstack().expect("enabled");
        assert!(size >= 64 * 1024);
        ensure_altstack().expect("idempotent");
        assert_eq!(current_altstack(), Some((start, size)));
    })
    .join()
    .expect("the thread checks its altstack");
}

#[test]
fn the_pool_reuses_a_released_stack() {
    let pool = StackPool::new();
    let first = pool.allocate(DEFAULT_STACK_SIZE).expect("a stack");
    let base = first.base();
    pool.release(first);
    assert_eq!(pool.pooled(), 1);
    let second = pool.allocate(DEFAULT_STACK_SIZE).expect("a stack");
    assert_eq!(second.base(), base);
    assert_eq!(pool.pooled(), 0);
    // A different size is a different free list.
    pool.release(second);
    let small = pool.allocate(MIN_STACK_SIZE).expect("a small stack");
    assert_ne!(small.base(), base);
    assert_eq!(
        small.size(),
        MIN_STACK_SIZE.next_multiple_of(sys::page_size())
    );
    assert_eq!(pool.pooled(), 1);
    // Dropping a stack returns it just like release does.
    drop(small);
    assert_eq!(pool.pooled(), 2);
    let again = pool.allocate(MIN_STACK_SIZE).expect("a small stack");
    assert_eq!(
        again.size(),
        MIN_STACK_SIZE.next_multiple_of(sys::page_size())
    );
}

#[test]
fn the_pool_unmaps_beyond_its_cap() {
    let live = guard_table::live();
    let pool = StackPool::with_cap(2);
    let stacks: Vec<BoxedStack> = (0..3)
        .map(|_| pool.allocate(DEFAULT_STACK_SIZE).expect("a stack"))
        .collect();
    assert_eq!(guard_table::live(), live + 3);
    for stack in stacks {
        pool.release(stack);
    }
    assert_eq!(pool.pooled(), 2);
    assert_eq!(guard_table::live(), live + 2);
    pool.clear();
    assert_eq!(pool.pooled(), 0);
    assert_eq!(guard_table::live(), live);

    // A stack outliving its pool is unmapped when dropped.
    let orphan = pool.allocate(DEFAULT_STACK_SIZE).expect("a stack");
    drop(pool);
    assert_eq!(guard_table::live(), live + 1);
    drop(orphan);
    assert_eq!(guard_table::live(), live);
}

/// What the mapping-limit child prints where there is no limit it can reach quickly.
const NO_MAPPING_LIMIT: &str = "no mapping limit to exhaust here";

#[test]
fn the_mapping_limit_is_named_with_its_remedies() {
    let child = in_child(|| {
        // As on a kernel that cannot make guard pages in place: two mappings a stack.
        sys::split_guards_from_now_on();
        let Some(max) = sys::max_map_count().filter(|&max| max <= 300_000) else {
            child_print(NO_MAPPING_LIMIT);
            return;
        };
        let mut stacks = Vec::with_capacity(max / 2 + 16);
        let fill = |stacks: &mut Vec<MmapStack>| loop {
            match MmapStack::new(MIN_STACK_SIZE) {
                Ok(stack) => stacks.push(stack),
                Err(error) => break error,
            }
        };
        // The budget stops first, with a reserve of mappings left.
        let error = fill(&mut stacks);
        child_print(&format!("budget={} error={error}\n", stacks.len()));
        // Without it, the kernel's limit is reached and named.
        budget::set_max_mappings(Some(usize::MAX - 1));
        let error = fill(&mut stacks);
        let count = stacks.len();
        drop(stacks);
        child_print(&format!("stacks={count} max={max}\nerror={error}\n"));
    });
    let text = &child.output;
    assert!(child.status.success(), "{:?}\n{text}", child.status);
    if text.contains(NO_MAPPING_LIMIT) {
        return;
    }
    let counts = text
        .split_once("stacks=")
        .and_then(|(_, rest)| rest.lines().next()?.split_once(" max="))
        .and_then(|(count, max)| Some((count.parse().ok()?, max.parse().ok()?)));
    let Some((count, max)): Option<(usize, usize)> = counts else {
        panic!("no counts in the child's output:\n{text}");
    };
    assert!(
        count > max / 2 - max / 16 && count <= max / 2,
        "{count} of {max}\n{text}"
    );
    assert!(
        text.contains(&format!("vm.max_map_count is {max}")),
        "{text}"
    );
    assert!(text.contains("two memory mappings"), "{text}");
    assert!(text.contains("sysctl -w vm.max_map_count="), "{text}");
    assert!(text.contains("fewer coroutines"), "{text}");
    assert!(text.contains(&format!("errno {}", libc::ENOMEM)), "{text}");
    let budget: usize = text
        .split_once("budget=")
        .and_then(|(_, rest)| rest.split_once(' ')?.0.parse().ok())
        .unwrap_or_else(|| panic!("no budget count:\n{text}"));
    let kept = (max - max / 8) / 2;
    assert!(
        budget <= kept && budget + 2_000 > kept,
        "{budget} stacks within the budget of {max} mappings\n{text}"
    );
    assert!(text.contains("allows itself"), "{text}");
    assert!(
        text.contains(&format!("vm.max_map_count's {max}")),
        "{text}"
    );
    assert!(text.contains("each stack takes two"), "{text}");
    assert!(text.contains("set_max_mappings"), "{text}");
}

/// What the slab children print where guard pages cannot be made in place.
const GUARDS_SPLIT: &str = "guards split mappings here";

#[test]
fn pool_stacks_share_one_mapping_per_slab() {
    let child = in_child(|| {
        if !sys::guards_in_place() {
            child_print(GUARDS_SPLIT);
            return;
        }
        let pool = StackPool::with_cap(0);
        let before = sys::map_count().expect("count mappings");
        let stacks: Vec<BoxedStack> = (0..1000)
            .map(|_| pool.allocate(DEFAULT_STACK_SIZE).expect("a stack"))
            .collect();
        let after = sys::map_count().expect("count mappings");
        // Every stack is usable to its limit and its guard is registered.
        for stack in &stacks {
            // SAFETY: the lowest usable byte of a stack this test owns and nothing runs on.
            unsafe { stack.limit().as_ptr().write_volatile(1) };
            let (start, _) = stack.guard().expect("a guard");
            assert!(guard_table::find(start).is_some());
        }
        child_print(&format!("mappings before={before} after={after}\n"));
    });
    let text = &child.output;
    assert!(child.status.success(), "{:?}\n{text}", child.status);
    if text.contains(GUARDS_SPLIT) {
        return;
    }
    let counts = text
        .split_once("before=")
        .and_then(|(_, rest)| rest.trim().split_once(" after="))
        .and_then(|(b, a)| Some((b.parse::<usize>().ok()?, a.parse::<usize>().ok()?)));
    let Some((before, after)) = counts else {
        panic!("no counts:\n{text}");
    };
    // 1000 stacks in slabs of 64: 16 mappings at most (neighbours may even merge); with a
    // mapping and a guard of their own they would be 2000.
    assert!(after <= before + 1000 / 64 + 2, "{before} -> {after}");
}

#[test]
fn a_reused_and_discarded_slab_slot_keeps_its_guard() {
    install_overflow_handler();
    let child = in_child(|| {
        let pool = StackPool::with_cap(0);
        let stacks: Vec<BoxedStack> = (0..40)
            .map(|_| pool.allocate(DEFAULT_STACK_SIZE).expect("a stack"))
            .collect();
        for stack in &stacks {
            // SAFETY: the lowest usable byte of a stack this test owns and nothing runs on.
            unsafe { stack.limit().as_ptr().write_volatile(1) };
        }
        let guards: Vec<usize> = stacks
            .iter()
            .map(|s| s.guard().expect("a guard").0)
            .collect();
        drop(stacks);
        // The slots come back (the pool keeps none warm): the last given back first, then
        // those whose pages were discarded in a batch.
        let again: Vec<BoxedStack> = (0..40)
            .map(|_| pool.allocate(DEFAULT_STACK_SIZE).expect("a stack"))
            .collect();
        for stack in &again {
            assert!(guards.contains(&stack.guard().expect("a guard").0));
        }
        let (start, _) = again[39].guard().expect("a guard");
        // SAFETY: deliberately not safe: the child process running this exists to fault.
        unsafe { (start as *mut u8).write_volatile(1) };
    });
    let text = &child.output;
    assert_eq!(child.status.signal(), Some(libc::SIGABRT), "{text}");
    assert!(text.contains("overflowed its stack (256 KiB)"), "{text}");
}
