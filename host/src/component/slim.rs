//! What `host compile` and the PHP snapshots leave out of a module before compiling it, so that
//! loading and instantiating it costs less; the code and what it computes are unchanged.
//!
//! - **Big name sections.** wasmtime keeps a module's function names in the `.cwasm` and reads
//!   all of them every time the file is loaded, i.e. at every cold start, to name the frames of
//!   a trap's backtrace. For PHP (19,000 functions, a 543 KB name section) that is 0.3 ms of a
//!   ~5.5 ms cold start from the layers (BENCHMARKS.md), for names a user of the runtime rarely
//!   sees: a PHP error is reported by PHP, and a trap inside the interpreter is a bug of ours.
//!   A `name` section over [`KEPT_NAMES`] is dropped: a frame then shows as `<func N>`; `host
//!   run` of the `.wasm` (compiled on the fly, names kept) gives them. A Rust handler's few
//!   hundred names cost microseconds and keep its stack traces readable. Under `LAMP_PERFMAP`
//!   (engine.rs, for profiling) every name is kept.
//!   The names the compiler itself reads are kept: [`crate::engine::EPOCH_POLL`] and
//!   [`crate::engine::EPOCH_POLLED`], by which it finds PHP's executor and its deadline poll.
//! - **Empty passive data segments.** Wizer turns every active data segment of the module it
//!   snapshots into an empty passive one (an active segment is dropped after instantiation, so
//!   that is what it was) and appends the memory it saw as new active segments. A snapshot of a
//!   snapshot — a deployment's code on the PHP build's pre-initialised interpreter
//!   (php/snapshot.rs) — so carries 10,000 empty passive segments, and wasmtime sets up a base
//!   and a length for each passive segment in every new instance: ~30 us of each PHP request
//!   under `host serve` (BENCHMARKS.md). An empty passive segment behaves exactly like an empty
//!   active one (both are empty after instantiation, so `memory.init` of zero bytes at offset 0
//!   succeeds and anything longer traps, and `data.drop` does nothing), which wasmtime folds into
//!   the memory image at no cost per instance; the pass turns the first into the second where
//!   the module already has an active segment in memory 0 at an `i32.const` offset (so memory 0
//!   exists and is 32-bit). Indices, and the data count, stay as they were.
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
/// A core module's data section.
const DATA: u8 = 11;

/// `wasm` (a module or a component) without the `name` sections larger than [`KEPT_NAMES`]
/// and with its empty passive data segments made active (see the module's documentation), in
/// nested modules and components too; everything else byte for byte.
pub fn slim(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(wasm.len());
    slim_into(wasm, &mut out)?;
    Ok(out)
}

fn slim_into(wasm: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (component, sections) = sections(wasm)?;
    out.extend_from_slice(&wasm[..8]);
    for Section { id, whole, body } in sections {
        if id == 0 && body.len() > KEPT_NAMES && !crate::engine::perfmap() && is_name_section(body)?
        {
            if let Some(names) = names_the_compiler_reads(body)? {
                push_section(out, 0, &names)?;
            }
            continue;
        }
        if component && (id == CORE_MODULE || id == COMPONENT) {
            let mut inner = Vec::with_capacity(body.len());
            slim_into(body, &mut inner)?;
            push_section(out, id, &inner)?;
        } else if !component
            && id == DATA
            && let Some(data) = activate_empty_passive(body)?
        {
            push_section(out, id, &data)?;
        } else {
            out.extend_from_slice(whole);
        }
    }
    Ok(())
}

/// The empty passive data segments in `wasm` (a module or a component, its core modules
/// counted): what [`slim`] leaves none of where it can (a test's measure of it).
pub fn empty_passive_data_segments(wasm: &[u8]) -> Result<usize> {
    let (component, sections) = sections(wasm)?;
    let mut empty = 0;
    for Section { id, body, .. } in sections {
        if component && (id == CORE_MODULE || id == COMPONENT) {
            empty += empty_passive_data_segments(body)?;
        } else if !component && id == DATA {
            let Some((segments, _)) = data_segments(body)? else {
                bail!("a data segment's offset is not one constant: not counted");
            };
            empty += segments.iter().filter(|s| s.is_empty_passive()).count();
        }
    }
    Ok(empty)
}

/// One section of a binary: its id, its bytes (header included) and its body.
struct Section<'a> {
    id: u8,
    whole: &'a [u8],
    body: &'a [u8],
}

/// Whether `wasm` is a component, and its sections in order.
fn sections(wasm: &[u8]) -> Result<(bool, Vec<Section<'_>>)> {
    ensure!(
        wasm.len() >= 8 && wasm.starts_with(b"\0asm"),
        "not a WebAssembly binary (no `\\0asm` header)"
    );
    // Version 1 is a core module; a component has layer 1 in bytes 6..8.
    let component = wasm[6..8] == [1, 0];
    let mut sections = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        let (size, body_at) = leb_u32(wasm, at + 1)?;
        let end = body_at
            .checked_add(size as usize)
            .filter(|&end| end <= wasm.len());
        let Some(end) = end else {
            bail!("section {id} at offset {at} runs past the end of the binary");
        };
        sections.push(Section {
            id,
            whole: &wasm[at..end],
            body: &wasm[body_at..end],
        });
        at = end;
    }
    Ok((component, sections))
}

fn push_section(out: &mut Vec<u8>, id: u8, body: &[u8]) -> Result<()> {
    out.push(id);
    push_leb_u32(out, u32::try_from(body.len())?);
    out.extend_from_slice(body);
    Ok(())
}

/// Data segment kinds (the leading flags of a segment).
const ACTIVE_MEMORY_0: u32 = 0;
const PASSIVE: u32 = 1;
const ACTIVE_EXPLICIT_MEMORY: u32 = 2;
/// The constant expressions of a segment's offset: `i32.const 0` `end`.
const I32_CONST: u8 = 0x41;
const END: u8 = 0x0b;

/// One data segment of a data section: where it is, its kind and its length.
struct Segment {
    range: std::ops::Range<usize>,
    kind: u32,
    len: u32,
    /// Active in memory 0 at an `i32.const` offset.
    in_32_bit_memory_0: bool,
}

impl Segment {
    fn is_empty_passive(&self) -> bool {
        self.kind == PASSIVE && self.len == 0
    }
}

/// The segments of the data section `body`, and the offset after the last; `None` when an
/// offset expression is other than one constant or `global.get`.
fn data_segments(body: &[u8]) -> Result<Option<(Vec<Segment>, usize)>> {
    let (count, mut at) = leb_u32(body, 0)?;
    let mut segments = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let start = at;
        let (kind, next) = leb_u32(body, at)?;
        at = next;
        let mut in_32_bit_memory_0 = false;
        match kind {
            ACTIVE_MEMORY_0 | ACTIVE_EXPLICIT_MEMORY => {
                let memory = if kind == ACTIVE_EXPLICIT_MEMORY {
                    let (memory, next) = leb_u32(body, at)?;
                    at = next;
                    memory
                } else {
                    0
                };
                in_32_bit_memory_0 = memory == 0 && body.get(at) == Some(&I32_CONST);
                let Some(next) = skip_constant(body, at)? else {
                    return Ok(None);
                };
                at = next;
            }
            PASSIVE => {}
            _ => bail!("data segment {} has an unknown kind {kind}", segments.len()),
        }
        let (len, data_at) = leb_u32(body, at)?;
        at = data_at
            .checked_add(len as usize)
            .filter(|&end| end <= body.len())
            .ok_or_else(|| {
                anyhow::anyhow!("data segment {} runs past its section", segments.len())
            })?;
        segments.push(Segment {
            range: start..at,
            kind,
            len,
            in_32_bit_memory_0,
        });
    }
    Ok(Some((segments, at)))
}

/// The data section `body` with each empty passive segment made an empty active segment at
/// offset 0 of memory 0, when there is one and the section already has an active segment in
/// memory 0 at an `i32.const` offset; `None` when nothing changes (or an offset expression is
/// other than one constant or `global.get`).
fn activate_empty_passive(body: &[u8]) -> Result<Option<Vec<u8>>> {
    let Some((segments, end)) = data_segments(body)? else {
        return Ok(None);
    };
    let empty_passive = segments.iter().filter(|s| s.is_empty_passive()).count();
    if empty_passive == 0 || !segments.iter().any(|s| s.in_32_bit_memory_0) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(body.len() + 2 * empty_passive);
    push_leb_u32(&mut out, u32::try_from(segments.len())?);
    for segment in &segments {
        if segment.is_empty_passive() {
            // Memory 0, `i32.const 0`, no bytes.
            out.extend_from_slice(&[ACTIVE_MEMORY_0 as u8, I32_CONST, 0, END, 0]);
        } else {
            out.extend_from_slice(&body[segment.range.clone()]);
        }
    }
    out.extend_from_slice(&body[end..]);
    Ok(Some(out))
}

/// The offset after a constant expression of one `i32.const`, `i64.const` or `global.get`
/// and `end` at `at`; `None` for anything longer (extended constant expressions).
fn skip_constant(body: &[u8], at: usize) -> Result<Option<usize>> {
    const I64_CONST: u8 = 0x42;
    const GLOBAL_GET: u8 = 0x23;
    let Some(&op) = body.get(at) else {
        bail!("truncated data segment offset at {at}");
    };
    if ![I32_CONST, I64_CONST, GLOBAL_GET].contains(&op) {
        return Ok(None);
    }
    // The immediate: a LEB128 number (signed for the constants; the bytes are the same walk).
    let mut next = at + 1;
    loop {
        let Some(&byte) = body.get(next) else {
            bail!("truncated data segment offset at {at}");
        };
        next += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    Ok((body.get(next) == Some(&END)).then_some(next + 1))
}

/// The function names subsection of a `name` section.
const FUNCTION_NAMES: u8 = 1;

/// The names wasmtime's translator reads (see the module's documentation).
const READ_BY_THE_COMPILER: [&str; 2] = [crate::engine::EPOCH_POLL, crate::engine::EPOCH_POLLED];

/// A `name` section (`body`) reduced to the function names the compiler reads (see the module's
/// documentation), or `None` when it has none of them.
fn names_the_compiler_reads(body: &[u8]) -> Result<Option<Vec<u8>>> {
    let (prefix, names) = function_names(body, &READ_BY_THE_COMPILER)?;
    if names.is_empty() {
        return Ok(None);
    }
    let mut subsection = Vec::new();
    push_leb_u32(&mut subsection, u32::try_from(names.len())?);
    for (index, name) in names {
        push_leb_u32(&mut subsection, index);
        push_leb_u32(&mut subsection, u32::try_from(name.len())?);
        subsection.extend_from_slice(name);
    }
    let mut section = prefix.to_vec();
    push_section(&mut section, FUNCTION_NAMES, &subsection)?;
    Ok(Some(section))
}

/// The start of a `name` section (`body`: its own name) and, from its function names, the
/// entries whose name is one of `wanted`, in order.
fn function_names<'a>(body: &'a [u8], wanted: &[&str]) -> Result<(&'a [u8], Vec<(u32, &'a [u8])>)> {
    let (len, name_at) = leb_u32(body, 0)?;
    let prefix_end = name_at + len as usize;
    ensure!(
        prefix_end <= body.len(),
        "a name section's name runs past it"
    );
    let mut at = prefix_end;
    let mut found = Vec::new();
    while at < body.len() {
        let id = body[at];
        let (size, sub_at) = leb_u32(body, at + 1)?;
        let end = sub_at + size as usize;
        ensure!(end <= body.len(), "a name subsection runs past its section");
        if id == FUNCTION_NAMES {
            let (entries, mut entry_at) = leb_u32(body, sub_at)?;
            for _ in 0..entries {
                let (index, name_len_at) = leb_u32(body, entry_at)?;
                let (name_len, name_at) = leb_u32(body, name_len_at)?;
                let name_end = name_at + name_len as usize;
                ensure!(name_end <= end, "a function name runs past its subsection");
                let name = &body[name_at..name_end];
                if wanted.iter().any(|w| w.as_bytes() == name) {
                    found.push((index, name));
                }
                entry_at = name_end;
            }
        }
        at = end;
    }
    Ok((&body[..prefix_end], found))
}

/// Which of the names the compiler reads (PHP's executor and its deadline poll) the function
/// names of `wasm`'s modules have, nested ones too: how a test tells that a PHP build polls.
pub fn names_read_by_the_compiler(wasm: &[u8]) -> Result<Vec<String>> {
    let (component, sections) = sections(wasm)?;
    let mut names = Vec::new();
    for Section { id, body, .. } in sections {
        if component && (id == CORE_MODULE || id == COMPONENT) {
            names.extend(names_read_by_the_compiler(body)?);
        } else if !component && id == 0 && is_name_section(body)? {
            let (_, found) = function_names(body, &READ_BY_THE_COMPILER)?;
            names.extend(
                found
                    .into_iter()
                    .map(|(_, n)| String::from_utf8_lossy(n).into_owned()),
            );
        }
    }
    Ok(names)
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
        let stripped = slim(&wasm).unwrap();
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
        let stripped = slim(&wasm).unwrap();
        assert!(!contains(&stripped, NAME));
        let engine = wasmtime::Engine::default();
        wasmtime::component::Component::new(&engine, &stripped).unwrap();
    }

    #[test]
    fn the_names_the_compiler_reads_are_kept() {
        let wasm = wat::parse_str(format!(
            "(module {} (func ${}) (func ${}))",
            named_functions(2000),
            crate::engine::EPOCH_POLLED,
            crate::engine::EPOCH_POLL
        ))
        .unwrap();
        let stripped = slim(&wasm).unwrap();
        assert!(!contains(&stripped, NAME));
        let (_, sections) = sections(&stripped).unwrap();
        let names = sections.iter().find(|s| s.id == 0).unwrap();
        // Only those two, with their indices (2000 and 2001) as in the original.
        let mut expected = b"\x04name\x01".to_vec();
        let mut subsection = vec![2];
        for (index, name) in [
            (2000u32, crate::engine::EPOCH_POLLED),
            (2001, crate::engine::EPOCH_POLL),
        ] {
            push_leb_u32(&mut subsection, index);
            subsection.push(name.len() as u8);
            subsection.extend_from_slice(name.as_bytes());
        }
        push_leb_u32(&mut expected, subsection.len() as u32);
        expected.extend_from_slice(&subsection);
        assert_eq!(names.body, expected.as_slice());
        assert_eq!(
            names_read_by_the_compiler(&stripped).unwrap(),
            [crate::engine::EPOCH_POLLED, crate::engine::EPOCH_POLL]
        );
        wasmtime::Module::new(&wasmtime::Engine::default(), &stripped).unwrap();
        // Slimming again keeps them (the section is small now).
        assert_eq!(slim(&stripped).unwrap(), stripped);
    }

    #[test]
    fn small_names_are_kept_and_a_binary_without_names_is_unchanged() {
        let small = wat::parse_str(format!("(module {})", named_functions(10))).unwrap();
        assert_eq!(slim(&small).unwrap(), small);
        let big = wat::parse_str(format!("(module {})", named_functions(2000))).unwrap();
        let stripped = slim(&big).unwrap();
        assert_eq!(slim(&stripped).unwrap(), stripped);
    }

    /// The kinds of a module's data segments, in order (0 active in memory 0, 1 passive).
    fn data_kinds(wasm: &[u8]) -> Vec<u32> {
        let (_, sections) = sections(wasm).unwrap();
        let data = sections.iter().find(|s| s.id == DATA).unwrap();
        let (segments, _) = data_segments(data.body).unwrap().unwrap();
        segments.iter().map(|s| s.kind).collect()
    }

    /// A module like a snapshot of a snapshot: empty passive segments (what wizer leaves of
    /// active ones), a passive segment with bytes, and the memory's contents as active ones.
    const SNAPSHOT_LIKE: &str = r#"(module
        (memory (export "memory") 1)
        (data "")
        (data "")
        (data "kept")
        (data (i32.const 16) "image")
        (func (export "init_empty") (param i32) (param i32)
            (memory.init 1 (i32.const 100) (local.get 0) (local.get 1)))
        (func (export "init_kept") (memory.init 2 (i32.const 200) (i32.const 0) (i32.const 4)))
        (func (export "drop_empty") (data.drop 0))
        (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))"#;

    #[test]
    fn empty_passive_segments_become_active_and_behave_the_same() {
        let wasm = wat::parse_str(SNAPSHOT_LIKE).unwrap();
        assert_eq!(data_kinds(&wasm), [1, 1, 1, 0]);
        let slimmed = slim(&wasm).unwrap();
        assert_eq!(data_kinds(&slimmed), [0, 0, 1, 0]);
        assert_eq!(empty_passive_data_segments(&wasm).unwrap(), 2);
        assert_eq!(empty_passive_data_segments(&slimmed).unwrap(), 0);
        // Both: the same memory, the same traps, the same results.
        let engine = wasmtime::Engine::default();
        for wasm in [&wasm, &slimmed] {
            let module = wasmtime::Module::new(&engine, wasm).unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let init_empty = instance
                .get_typed_func::<(i32, i32), ()>(&mut store, "init_empty")
                .unwrap();
            let load = instance
                .get_typed_func::<i32, i32>(&mut store, "load")
                .unwrap();
            let init_kept = instance
                .get_typed_func::<(), ()>(&mut store, "init_kept")
                .unwrap();
            let drop_empty = instance
                .get_typed_func::<(), ()>(&mut store, "drop_empty")
                .unwrap();
            assert_eq!(load.call(&mut store, 16).unwrap(), i32::from(b'i'));
            init_empty.call(&mut store, (0, 0)).unwrap();
            assert!(init_empty.call(&mut store, (0, 1)).is_err());
            assert!(init_empty.call(&mut store, (1, 0)).is_err());
            drop_empty.call(&mut store, ()).unwrap();
            init_kept.call(&mut store, ()).unwrap();
            assert_eq!(load.call(&mut store, 200).unwrap(), i32::from(b'k'));
        }
        // Done once, it has nothing left to do.
        assert_eq!(slim(&slimmed).unwrap(), slimmed);
    }

    #[test]
    fn without_an_active_segment_in_a_32_bit_memory_0_passive_ones_stay() {
        for wat in [
            r#"(module (memory 1) (data "") (func (data.drop 0)))"#,
            r#"(module (memory i64 1) (data "") (data (i64.const 0) "x"))"#,
            r#"(module (memory $a 1) (memory $b 1) (data "") (data (memory $b) (i32.const 0) "x"))"#,
        ] {
            let wasm = wat::parse_str(wat).unwrap();
            assert_eq!(slim(&wasm).unwrap(), wasm, "{wat}");
        }
    }

    #[test]
    fn a_truncated_binary_is_an_error() {
        let wasm = wat::parse_str(r#"(module (func $f (export "f")))"#).unwrap();
        let err = slim(&wasm[..wasm.len() - 3]).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        assert!(slim(b"not wasm").is_err());
    }
}
