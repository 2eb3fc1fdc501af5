#!/usr/bin/env bash
# Run the core and epoll test suites for riscv64 Linux under qemu-riscv64 (user mode): the
# RISC-V context switch's self-test (core/src/arch/riscv.rs), the core's semantics, sync,
# interruption and shared-stack suites (again with the debug features on), the epoll
# backend's conformance suite, and the runtime's suite but for what qemu-user cannot run.
#
# Installs what it needs when missing (qemu-user and the riscv64 cross gcc, used as the
# linker, through apt; the Rust target through rustup), so a fresh Debian or Ubuntu machine
# passes. Safe to run again: nothing is installed twice. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."

target=riscv64gc-unknown-linux-gnu
sysroot=/usr/riscv64-linux-gnu

. ci/apt.sh
# The cross C library (crt files, libc) is only recommended by the compiler package.
apt_install qemu-user gcc-riscv64-linux-gnu libc6-dev-riscv64-cross

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER=riscv64-linux-gnu-gcc
export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER="qemu-riscv64 -L $sysroot"

# core/src/arch/riscv.rs and the runtime's riscv64 code compile only for RISC-V, so the
# workspace's clippy never sees them.
cargo clippy --target "$target" -p shrapnel-core --all-targets --features std,latency,stacks \
    -- -D warnings
cargo clippy --target "$target" -p shrapnel --all-targets --features latency,stacks,backdoor \
    -- -D warnings

cargo test --target "$target" -p shrapnel-core -p shrapnel-epoll "$@"
# With the debug features: where_all's frame-pointer walk over RISC-V frame records (the
# record two words below s0), and the latency warning.
cargo test --target "$target" -p shrapnel-core --features std,latency,stacks "$@"

# The runtime's suite, without 39 tests: 34 fork and re-execute the test binary, fault on
# guard pages or crash a child on purpose, and fail the same way under qemu-aarch64 (checked
# 2026-12-05); one is a timing check too tight for emulation; the 4 of tests/examples.rs
# drive example binaries from the host's clients. Everything else (sockets, the blocking pool, processes,
# signals, per-core schedulers, where_all...) runs on riscv64.
qemu_user_limits=(
    # guard pages and the overflow report (a fault that qemu-user's child never takes)
    stack::tests::a_reused_and_discarded_slab_slot_keeps_its_guard
    stack::tests::a_guard_hit_is_reported_and_aborts
    stack::tests::recursion_on_a_guarded_stack_is_reported_on_the_altstack
    stack::tests::the_guard_page_faults
    # a raw fork() of the multi-threaded test process, which can hang under qemu-user (its
    # own locks, held by another thread at the fork; seen once in CI on
    # pool_stacks_share_one_mapping_per_slab)
    stack::tests::pool_stacks_share_one_mapping_per_slab
    stack::tests::other_faults_keep_their_default_action
    stack::tests::the_mapping_limit_is_named_with_its_remedies
    stack_overflow_names_the_coroutine_and_aborts
    a_shared_stack_overflow_names_the_running_coroutine
    more_guarded_coroutines_than_split_guards_would_allow
    at_the_mapping_limit_spawn_fails_cleanly_and_the_process_keeps_serving
    # the test binary re-executed as a child, or a child's output and status read back
    # (tests/latency.rs: its children pass when run by hand under qemu-riscv64)
    a_full_queue_is_an_error_that_names_the_limit
    the_core_and_print_stderr_print_the_same_local_time
    a_notifier_that_panics_falls_back_to_the_default
    coroutines_with_small_stacks_can_panic_and_ask_where_all
    print_stderr_reaches_the_saved_stderr_after_fds_1_and_2_are_redirected
    the_debug_signal_prints_where_all_and_the_program_goes_on
    the_default_notifier_prints_shrapnels_line_with_a_compact_traceback
    accept_at_emfile_reports_and_recovers
    a_missing_program_is_named_in_the_error
    a_second_sigint_during_the_stop_ends_the_process_at_once
    sigint_and_sigterm_stop_the_loop_cleanly_with_the_conventional_status
    a_scheduler_started_after_sigint_stops_too
    the_debug_signal_dumps_every_scheduler_of_run_per_core
    a_handler_the_program_installed_first_still_runs_after_the_dump
    a_bad_pointer_dumps_every_coroutine_and_dies_of_sigsegv
    every_scheduler_thread_dumps_its_coroutines
    a_scheduler_configured_without_it_prints_no_dump
    a_stack_overflow_keeps_its_own_report_and_no_dump
    an_abort_dumps_every_coroutine_and_dies_of_sigabrt
    a_250ms_stall_warns_once_with_the_sampled_stack
    every_scheduler_of_run_per_core_is_watched
    a_stall_inside_the_clock_call_names_the_caller
    a_long_stall_is_reported_while_it_lasts_at_doubling_marks
    factor_zero_silences_and_out_of_range_is_rejected
    # timing: asks that two where_all calls lie within a second; under emulation, with
    # feature stacks, the first symbolization takes longer
    where_all_display_prints_one_block_per_coroutine
    # tests/examples.rs: example binaries driven by curl, socat and openssl
    chat_delivers_lines_with_nicks_and_announces_leaves
    http_keeps_the_connection_alive_and_refuses_garbage
    proxy_relays_both_ways_to_its_target
    tls_echoes_lines_to_openssl
)
skips=()
for name in "${qemu_user_limits[@]}"; do
    skips+=(--skip "$name")
done
# With the debug features, as CI runs it natively: the latency sampler reads riscv64's
# ucontext and walks its frame records (src/latency.rs's unit tests).
cargo test --target "$target" -p shrapnel --features latency,stacks "$@" -- "${skips[@]}"
