//! Paths of the plugins in `plugins/`, built for wasm32-wasip2 by this
//! crate's build script. Only the tests depend on it.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
