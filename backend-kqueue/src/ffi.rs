//! The kqueue API this crate calls, in one place: the C library's on the kqueue systems,
//! or with the `libkqueue` feature on Linux, libkqueue's (a userspace kqueue over epoll,
//! eventfd and signalfd, used by CI to run this backend; see the crate doc).
//!
//! `kqueue.rs` names everything through this module, so its code paths are the same on
//! both; only the definitions below differ.

#[cfg(kqueue_os)]
pub(crate) use libc::{
    kevent, kqueue, EVFILT_READ, EVFILT_USER, EVFILT_WRITE, EV_ADD, EV_CLEAR, EV_DELETE, EV_EOF,
    EV_ERROR, EV_RECEIPT, NOTE_TRIGGER,
};

#[cfg(libkqueue)]
pub(crate) use libkqueue::*;

/// libkqueue's `<sys/event.h>` (the one its build generates from `include/sys/event.h.in`)
/// on Linux: the BSD layout without FreeBSD's `ext` array, and the FreeBSD values of the
/// filters and flags.
#[cfg(libkqueue)]
#[allow(non_camel_case_types)]
mod libkqueue {
    /// `struct kevent`: `uintptr_t ident; short filter; unsigned short flags;
    /// unsigned int fflags; intptr_t data; void *udata;`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct kevent {
        /// The fd (for the read and write filters) or the user event's number.
        pub(crate) ident: usize,
        /// Which filter: one of the `EVFILT_*` below.
        pub(crate) filter: i16,
        /// `EV_*` flags: the action on input, `EV_EOF`/`EV_ERROR` on output.
        pub(crate) flags: u16,
        /// Filter-specific flags (`NOTE_TRIGGER` for the user filter).
        pub(crate) fflags: u32,
        /// Filter-specific data: the errno in an `EV_ERROR` receipt.
        pub(crate) data: isize,
        /// Passed through untouched: the token.
        pub(crate) udata: *mut core::ffi::c_void,
    }

    pub(crate) const EVFILT_READ: i16 = -1;
    pub(crate) const EVFILT_WRITE: i16 = -2;
    pub(crate) const EVFILT_USER: i16 = -11;

    pub(crate) const EV_ADD: u16 = 0x0001;
    pub(crate) const EV_DELETE: u16 = 0x0002;
    pub(crate) const EV_CLEAR: u16 = 0x0020;
    pub(crate) const EV_RECEIPT: u16 = 0x0040;
    pub(crate) const EV_ERROR: u16 = 0x4000;
    pub(crate) const EV_EOF: u16 = 0x8000;

    pub(crate) const NOTE_TRIGGER: u32 = 0x0100_0000;

    // Linked by build.rs: libkqueue.a from `SHRAPNEL_LIBKQUEUE_DIR`, or the system's
    // libkqueue.
    extern "C" {
        /// `int kqueue(void)`.
        pub(crate) fn kqueue() -> libc::c_int;
        /// `int kevent(int kq, const struct kevent *changelist, int nchanges,
        /// struct kevent *eventlist, int nevents, const struct timespec *timeout)`.
        pub(crate) fn kevent(
            kq: libc::c_int,
            changelist: *const kevent,
            nchanges: libc::c_int,
            eventlist: *mut kevent,
            nevents: libc::c_int,
            timeout: *const libc::timespec,
        ) -> libc::c_int;
    }
}
