//! Precompiled code without big name sections: `host compile` drops a module's `name` custom
//! section when it is larger than [`KEPT_NAMES`] before compiling.
//!
//! wasmtime keeps a module's function names in the `.cwasm` and reads all of them every time
//! the file is loaded, i.e. at every cold start, to name the frames of a trap's backtrace. For
//! PHP (19,000 functions, a 543 KB name section) that is 0.3 ms of a ~5.5 ms cold start from the
//! layers (BENCHMARKS.md), for names a user of the runtime rarely sees: a PHP error is reported
//! by PHP, and a trap inside the interpreter is a bug of ours. Without names a frame shows as
//! `<func N>`; `host run` of the `.wasm` (compiled on the fly, names kept) gives them. A Rust
//! handler's few hundred names cost microseconds and keep its stack traces readable.
//!
//! The binary format makes this a walk over sections: a module or component is an 8-byte
//! header and then sections of `id`, LEB128 `size`, body; a component's core modules (id 1)
//! and nested components (id 4) are whole binaries of their own, walked the same way.

use anyhow::{Result, bail, ensure};

/// The largest name section kept: reading it costs a load well under 0.1 ms.
pub const KEPT_NAMES: usize = 64 << 10;
/// Component section ids whose body is a whole module or component binary.
const CORE_MODULE: u8 = 1;
const COMPONENT: u8 = 4;

/// `wasm` (a module or a component) without the `name` sections larger than [`KEPT_NAMES`],
/// in nested modules and components too; everything else byte for byte.
pub fn strip(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(wasm.len());
    strip_into(wasm, &mut out)?;
    Ok(out)
}

fn strip_into(wasm: &[u8], out: &mut Vec<u8>) -> Result<()> {
    ensure!(
        wasm.len() >= 8 && wasm.starts_with(b"\0asm"),
        "not a WebAssembly binary (no `\\0asm` header)"
    );
    // Version 1 is a core module; a component has layer 1 in bytes 6..8.
    let component = wasm[6..8] == [1, 0];
    out.extend_from_slice(&wasm[..8]);
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        let (size, body_at) = leb_u32(wasm, at + 1)?;
        let end = body_at
            .checked_add(size as usize)
            .filter(|&end| end <= wasm.len());
        let Some(end) = end else {
            bail!("section {id} at offset {at} runs past the end of the binary");
        };
        let body = &wasm[body_at..end];
        at = end;
        if id == 0 && body.len() > KEPT_NAMES && is_name_section(body)? {
            continue;
        }
        if component && (id == CORE_MODULE || id == COMPONENT) {
            let mut inner = Vec::with_capacity(body.len());
            strip_into(body, &mut inner)?;
            out.push(id);
            push_leb_u32(out, u32::try_from(inner.len())?);
            out.extend_from_slice(&inner);
        } else {
            out.extend_from_slice(&wasm[start..end]);
        }
    }
    Ok(())
}

fn is_name_section(body: &[u8]) -> Result<bool> {
    let (len, name_at) = leb_u32(body, 0)?;
    let name = body.get(name_at..name_at + len as usize);
    Ok(name == Some(b"name".as_slice()))
}

/// A LEB128 u32 at `at`: its value and the offset after it.
fn leb_u32(bytes: &[u8], mut at: usize) -> Result<(u32, usize)> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let Some(&byte) = bytes.get(at) else {
            bail!("truncated LEB128 number at offset {at}");
        };
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((u32::try_from(value)?, at));
        }
    }
    bail!("LEB128 number longer than 5 bytes at offset {at}")
}

fn push_leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &[u8] = b"a_function_only_the_name_section_names";

    /// A module text with `count` named functions: names past [`KEPT_NAMES`] when many.
    fn named_functions(count: usize) -> String {
        (0..count)
            .map(|i| format!("(func ${}_{i:05})", String::from_utf8_lossy(NAME)))
            .collect()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_module_loses_its_names_and_still_runs() {
        let wasm = wat::parse_str(format!(
            r#"(module {} (func (export "f") (result i32) i32.const 7))"#,
            named_functions(2000)
        ))
        .unwrap();
        assert!(contains(&wasm, NAME));
        let stripped = strip(&wasm).unwrap();
        assert!(!contains(&stripped, NAME));
        assert!(stripped.len() < wasm.len());
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &stripped).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 7);
    }

    #[test]
    fn a_components_core_modules_lose_theirs() {
        let wasm = wat::parse_str(format!(
            "(component $c (core module $m {}))",
            named_functions(2000)
        ))
        .unwrap();
        assert!(contains(&wasm, NAME));
        let stripped = strip(&wasm).unwrap();
        assert!(!contains(&stripped, NAME));
        let engine = wasmtime::Engine::default();
        wasmtime::component::Component::new(&engine, &stripped).unwrap();
    }

    #[test]
    fn small_names_are_kept_and_a_binary_without_names_is_unchanged() {
        let small = wat::parse_str(format!("(module {})", named_functions(10))).unwrap();
        assert_eq!(strip(&small).unwrap(), small);
        let big = wat::parse_str(format!("(module {})", named_functions(2000))).unwrap();
        let stripped = strip(&big).unwrap();
        assert_eq!(strip(&stripped).unwrap(), stripped);
    }

    #[test]
    fn a_truncated_binary_is_an_error() {
        let wasm = wat::parse_str(r#"(module (func $f (export "f")))"#).unwrap();
        let err = strip(&wasm[..wasm.len() - 3]).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        assert!(strip(b"not wasm").is_err());
    }
}
