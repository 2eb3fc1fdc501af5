//! The epoll Poller for shrapnel.
