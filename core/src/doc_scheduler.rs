//! The scheduler the crate's doc examples run on (hidden from the docs): installed by the
//! first line of an example, `# shrapnel_core::doc_scheduler!();`, with a clock and an idle
//! built from std in the example's own crate (doc examples always have std), no I/O
//! backend, and heap stacks. Programs use the `shrapnel` runtime or install their own.

/// Install a scheduler for a doc example (see the module doc).
#[doc(hidden)]
#[macro_export]
macro_rules! doc_scheduler {
    () => {{
        struct DocClock(::std::time::Instant);
        impl $crate::clock::Clock for DocClock {
            fn now(&self) -> u64 {
                self.0.elapsed().as_nanos() as u64
            }
            fn ticks_per_second(&self) -> u64 {
                1_000_000_000
            }
        }
        struct DocIdle;
        impl $crate::poller::Idle for DocIdle {
            fn idle(&self, timeout: ::core::option::Option<::core::time::Duration>) {
                ::std::thread::sleep(timeout.unwrap_or(::core::time::Duration::from_millis(10)));
            }
        }
        $crate::sched::install($crate::sched::Config {
            poller: ::std::boxed::Box::new($crate::poller::NullPoller::new(DocIdle)),
            clock: ::std::boxed::Box::new(DocClock(::std::time::Instant::now())),
            stacks: ::std::boxed::Box::new($crate::stack::HeapStackAllocator),
            sink: ::std::boxed::Box::new($crate::sink::NullSink),
            default_stack_size: 64 * 1024,
        })
        .expect("a doc example installs one scheduler");
    }};
}
