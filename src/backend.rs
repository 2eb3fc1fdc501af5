//! Which Poller this build uses: the `epoll`/`kqueue` features, or the target OS.

cfg_if::cfg_if! {
    if #[cfg(all(feature = "epoll", feature = "kqueue"))] {
        compile_error!("shrapnel: enable at most one of the features `epoll` and `kqueue`; with neither, the target OS picks its backend.");
    } else if #[cfg(all(feature = "epoll", not(target_os = "linux")))] {
        compile_error!("shrapnel: the `epoll` backend needs Linux; on FreeBSD, macOS and the other BSDs use the `kqueue` feature, or enable neither and let the target pick.");
    } else if #[cfg(all(feature = "kqueue", not(any(target_os = "freebsd", target_os = "macos", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly"))))] {
        compile_error!("shrapnel: the `kqueue` backend needs FreeBSD, macOS, NetBSD, OpenBSD or DragonFly; on Linux use the `epoll` feature, or enable neither and let the target pick.");
    } else if #[cfg(target_os = "linux")] {
        /// The Poller of this build.
        pub type OsPoller = shrapnel_epoll::EpollPoller;
    } else if #[cfg(any(target_os = "freebsd", target_os = "macos", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly"))] {
        /// The Poller of this build.
        pub type OsPoller = shrapnel_kqueue::KqueuePoller;
    } else {
        compile_error!("shrapnel: this OS has no Poller backend; shrapnel supports Linux (epoll) and FreeBSD, macOS, NetBSD, OpenBSD, DragonFly (kqueue). On bare metal use shrapnel-core with NullPoller.");
    }
}
