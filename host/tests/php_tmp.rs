#[path = "../../tests/it/php.rs"]
mod php;
