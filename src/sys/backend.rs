//! Which Poller this build uses (`kqueue_os` is set by the crate's build.rs for the
//! operating systems with kqueue): among the enabled `epoll`/`kqueue` features the one the
//! target OS can run, or with neither, the target OS's own. Features are additive: turning
//! both on (as `--all-features` does) is fine; only a set of backends none of which the
//! target can run is an error.
//!
//! The one exception is the `libkqueue` feature (it implies `kqueue`), for CI: on Linux it
//! selects the kqueue backend over libkqueue, a userspace kqueue, so the runtime's tests run
//! the code the BSDs run (`ci/kqueue.sh`). It wins over `epoll`, also under
//! `--all-features`.

cfg_if::cfg_if! {
    if #[cfg(all(target_os = "linux", feature = "libkqueue"))] {
        /// The Poller of this build (kqueue over libkqueue: the `libkqueue` feature).
        pub type OsPoller = shrapnel_kqueue::KqueuePoller;
    } else if #[cfg(all(target_os = "linux", feature = "kqueue", not(feature = "epoll")))] {
        compile_error!("shrapnel: the `kqueue` backend needs FreeBSD, macOS, NetBSD, OpenBSD or DragonFly; on Linux enable `epoll`, or neither backend feature and let the target pick (or, to test the kqueue backend on Linux, `libkqueue`: see ci/kqueue.sh).");
    } else if #[cfg(target_os = "linux")] {
        /// The Poller of this build.
        pub type OsPoller = shrapnel_epoll::EpollPoller;
    } else if #[cfg(all(kqueue_os, feature = "epoll", not(feature = "kqueue")))] {
        compile_error!("shrapnel: the `epoll` backend needs Linux; on FreeBSD, macOS and the other BSDs enable `kqueue`, or neither backend feature and let the target pick.");
    } else if #[cfg(kqueue_os)] {
        /// The Poller of this build.
        pub type OsPoller = shrapnel_kqueue::KqueuePoller;
    } else {
        compile_error!("shrapnel: this OS has no Poller backend; shrapnel supports Linux (epoll) and FreeBSD, macOS, NetBSD, OpenBSD, DragonFly (kqueue). On bare metal use shrapnel-core with NullPoller.");
    }
}
