//! The seed's hello world, in Rust.

use lamp_handler::{Context, Error, handler};

#[derive(serde::Deserialize)]
struct Event {
    name: String,
}

fn hello(event: Event, _context: &Context) -> Result<String, Error> {
    Ok(format!("Hello, {}", event.name))
}

handler!(hello);
