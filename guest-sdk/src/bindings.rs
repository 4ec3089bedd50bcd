//! The wit-bindgen bindings of `wit/corral.wit` (world `task-plugin`).
//!
//! Task authors never use these directly: [`crate::plugin!`] implements the
//! generated `Guest` trait and invokes the generated export macro in the
//! plugin's crate, which is why the macro is public and the runtime path
//! points through this crate.

wit_bindgen::generate!({
    path: "../wit",
    world: "corral:task/task-plugin",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "::corral_guest::__private::bindings",
    runtime_path: "::corral_guest::__private::wit_bindgen::rt",
});
