//! Coroutine-local storage: [`coro_local!`](crate::coro_local!), `thread_local!` for
//! coroutines.
//!
//! Each coroutine that touches a [`CoroLocalKey`] gets its own value of it, made by the
//! key's initialiser on the coroutine's first access and dropped when the coroutine ends
//! (before its joiners wake, most recently initialised first, still inside the coroutine,
//! so a destructor may use `current()` or other locals).
//!
//! The values live on the heap, in a small map the coroutine record holds as one word
//! (`CoroLocals`): empty until the coroutine's first access, so a coroutine that never
//! uses a local pays no allocation and no work when it ends. It works the same on the
//! shared stack and on bare metal (the running coroutine is found through the scheduler,
//! not through an OS thread-local).
//!
//! Outside any coroutine (the scheduler's own context, `main` before `event_loop`, a
//! thread with no scheduler) there is no coroutine to keep a value for, and an access
//! never panics: each one sees a fresh value from the initialiser, dropped when the access
//! ends. A read there gives the initial value; a write does not persist.
//! [`try_with`](CoroLocalKey::try_with) tells the two cases apart.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::{Cell, RefCell};

use crate::hooks;
use crate::sched::try_sched;

/// Declare coroutine-local statics: `coro_local! { static NAME: T = init; }`, like
/// `thread_local!` but with one value per coroutine (see [`CoroLocalKey`]).
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::cell::Cell;
///
/// shrapnel::coro_local! {
///     /// The request this coroutine serves.
///     static REQUEST_ID: Cell<u64> = Cell::new(0);
/// }
///
/// let workers: Vec<_> = (1..=3)
///     .map(|id| {
///         shrapnel::spawn(move || {
///             REQUEST_ID.set(id * 100);
///             shrapnel::yield_slice(); // the others set theirs meanwhile
///             REQUEST_ID.get()
///         })
///     })
///     .collect();
/// shrapnel::event_loop();
/// let seen: Vec<_> = workers.iter().map(|w| w.join().unwrap()).collect();
/// assert_eq!(seen, [100, 200, 300]);
/// ```
#[macro_export]
macro_rules! coro_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::coro_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::coro_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::coro_local::CoroLocalKey<$t> = {
            fn init() -> $t {
                $init
            }
            $crate::coro_local::CoroLocalKey::new(init)
        };
    };
}

/// A coroutine-local value, declared with [`coro_local!`](crate::coro_local!): each
/// coroutine sees its own, initialised lazily and dropped when the coroutine ends.
///
/// The key is identified by its address, which is why its methods take `&'static self`.
pub struct CoroLocalKey<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> CoroLocalKey<T> {
    #[doc(hidden)]
    /// The key [`coro_local!`](crate::coro_local!) declares (use the macro).
    pub const fn new(init: fn() -> T) -> Self {
        CoroLocalKey { init }
    }

    /// Run `f` with the running coroutine's value, initialising it on the coroutine's
    /// first access. Outside a coroutine, `f` gets a fresh value, dropped afterwards (see
    /// the module doc). `f` may block: the value stays the same coroutine's.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.value() {
            Some(v) => f(&v),
            None => f(&(self.init)()),
        }
    }

    /// As [`with`](Self::with), but `None` outside a coroutine (nothing initialised).
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.value().map(|v| f(&v))
    }

    /// The running coroutine's value (made now if it had none); `None` outside coroutines.
    fn value(&'static self) -> Option<Rc<T>> {
        let key = self as *const Self as usize;
        if let Some(v) = running_locals()?.get(key) {
            return Some(downcast(v));
        }
        // The initialiser may block, spawn or touch other locals: no map is borrowed
        // while it runs. If it initialised this key itself, the value it made stays.
        let fresh: Rc<dyn Any> = Rc::new((self.init)());
        let v = running_locals()?.get_or_insert(key, fresh);
        Some(downcast(v))
    }
}

/// Every value under a key is of the key's type (the key's address identifies it).
fn downcast<T: 'static>(v: Rc<dyn Any>) -> Rc<T> {
    match v.downcast::<T>() {
        Ok(v) => v,
        Err(_) => unreachable!("a coroutine-local key's values are of its type"),
    }
}

impl<T: 'static> core::fmt::Debug for CoroLocalKey<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CoroLocalKey { .. }")
    }
}

/// The running coroutine's locals.
fn running_locals() -> Option<&'static CoroLocals> {
    // The running coroutine stays alive while it runs, and only it reaches this map.
    try_sched()?.running().map(|co| co.locals())
}

impl<T: 'static> CoroLocalKey<Cell<T>> {
    /// Set the running coroutine's value (outside a coroutine this does nothing lasting).
    pub fn set(&'static self, value: T) {
        self.with(|c| c.set(value));
    }

    /// A copy of the running coroutine's value.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Take the running coroutine's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replace the running coroutine's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> CoroLocalKey<RefCell<T>> {
    /// Run `f` with the running coroutine's value borrowed.
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|c| f(&c.borrow()))
    }

    /// Run `f` with the running coroutine's value borrowed mutably.
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|c| f(&mut c.borrow_mut()))
    }

    /// Set the running coroutine's value.
    pub fn set(&'static self, value: T) {
        self.with(|c| *c.borrow_mut() = value);
    }

    /// Take the running coroutine's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replace the running coroutine's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

/// One coroutine's locals, the part of the coroutine record this module owns: nothing
/// (one null word) until the first access.
pub(crate) struct CoroLocals(Cell<Option<Box<LocalMap>>>);

/// `(key address, value)` pairs in the order they were initialised (a coroutine has a
/// few: a linear search is the fast one).
#[derive(Default)]
struct LocalMap(Vec<(usize, Rc<dyn Any>)>);

impl LocalMap {
    fn get(&self, key: usize) -> Option<Rc<dyn Any>> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }
}

impl CoroLocals {
    /// No locals yet.
    pub(crate) const fn new() -> Self {
        CoroLocals(Cell::new(None))
    }

    /// The value under `key`. (No user code runs while the map is out of its cell.)
    fn get(&self, key: usize) -> Option<Rc<dyn Any>> {
        let map = self.0.take()?;
        let found = map.get(key);
        self.0.set(Some(map));
        found
    }

    /// The value under `key`, which is `fresh` unless it had one already.
    fn get_or_insert(&self, key: usize, fresh: Rc<dyn Any>) -> Rc<dyn Any> {
        let mut map = self.0.take().unwrap_or_default();
        let v = match map.get(key) {
            Some(v) => v,
            None => {
                map.0.push((key, fresh.clone()));
                fresh
            }
        };
        self.0.set(Some(map));
        // An unused `fresh` (the initialiser made this key's value itself) drops here,
        // after the map is back.
        v
    }

    /// The coroutine is ending (called on its stack, while it is still the running one):
    /// drop its values, most recently initialised first, one at a time, so a destructor
    /// still sees the values not dropped yet. A destructor that touches a local already
    /// dropped makes it anew, and that one drops too; a panicking destructor is reported
    /// like a coroutine's panic (feature `std`) and the rest still drop.
    #[inline]
    pub(crate) fn end(&self) {
        if let Some(map) = self.0.take() {
            self.drop_values(map);
        }
    }

    #[cold]
    fn drop_values(&self, map: Box<LocalMap>) {
        // Destructors that keep making locals for one another are cut off; what is left
        // drops with the coroutine record.
        let mut budget = 8 * map.0.len() + 8;
        self.0.set(Some(map));
        while budget > 0 {
            budget -= 1;
            let Some(mut map) = self.0.take() else { return };
            let Some((_, value)) = map.0.pop() else {
                return;
            };
            self.0.set(Some(map));
            // A panic is reported by `run_body`; the others still drop.
            let _ = hooks::run_body(move || drop(value));
        }
    }
}
