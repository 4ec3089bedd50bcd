//! The smallest Corral plugin: one task that greets.

use corral_guest::{Context, TaskError, plugin, task};
#[task(description = "Greets someone")]
fn greet(ctx: &mut Context) -> Result<(), TaskError> {
    let name: String = ctx.get("name")?; // typed, with a clear error if missing or mistyped
    ctx.set("greeting", format!("hello, {name}"))?;
    Ok(())
}
plugin!(name = "hello", version = "0.1.0", tasks = [greet]);
