//! Corral runs workflow tasks as sandboxed WebAssembly components.
#![warn(missing_docs)]

#[doc(hidden)]
pub mod cli;
pub mod sandbox;
pub mod store;
