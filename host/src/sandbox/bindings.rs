//! Host-side bindings generated from `wit/corral.wit`.

wasmtime::component::bindgen!({
    world: "task-plugin",
    path: "../wit",
    exports: { default: async },
});

pub use self::corral::task::types::{Level, PluginInfo, TaskError};
