//! The kqueue Poller for shrapnel.
