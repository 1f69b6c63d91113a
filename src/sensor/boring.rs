//! BoringSSL linked into an executable without its symbols (Bun, and so Claude Code, a Bun
//! executable): its SSL_write and SSL_read, which take and return what OpenSSL's do, found
//! by what the code is. The probes then go on them as on a library's exported functions.
//!
//! The signature: BoringSSL reports errors with OPENSSL_PUT_ERROR, which passes the library
//! (ERR_LIB_SSL), the reason code and the source file's name as constants. SSL_write is the
//! one function of ssl_lib.cc raising exactly {SHOULD_NOT_HAVE_BEEN_CALLED (its QUIC check,
//! first), UNINITIALIZED, SSL_HANDSHAKE_FAILURE, BAD_LENGTH}; SSL_read raises only the
//! first and calls ssl_read_impl, whose first two are UNINITIALIZED and
//! SSL_HANDSHAKE_FAILURE. Reason codes, not line numbers: lines move between versions.
//! Executables whose functions were found this way are kept by build id in
//! boring_builds.toml (`agentguard doctor --tls FILE` prints an entry), which spares a
//! known build the search.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
use object::{Object, ObjectSection, ObjectSegment, SectionKind};
use serde::Deserialize;

const LIB_SSL: u64 = 16;
const SHOULD_NOT_HAVE_BEEN_CALLED: u64 = 0x42;
const UNINITIALIZED: u64 = 0xe2;
const HANDSHAKE_FAILURE: u64 = 0xd7;
const BAD_LENGTH: u64 = 0x6f;
/// The source file whose error sites name the functions.
const SOURCE: &[u8] = b"ssl/ssl_lib.cc\0";
/// The most of a file's code the search reads: a tree can exec a file claiming any size (a
/// sparse one), and the search runs in agentguard. Bun's code is about 130 MB.
const CODE_MAX: u64 = 256 << 20;
/// The most of its read-only data scanned for the source's name, a piece at a time.
const DATA_MAX: u64 = 1 << 30;
const PIECE: usize = 16 << 20;
/// Error sites naming the source, at most: BoringSSL's ssl_lib.cc has about a hundred.
/// Each function holding some is decoded once, from its start.
const SITES_MAX: usize = 1024;
/// Signature searches per run: each reads its executable's code, in the loop that reads
/// the sensor's events, so a tree that execs many such files cannot stall it for long.
const SEARCHES_MAX: usize = 8;

/// Where SSL_write and SSL_read are: file offsets, as uprobes take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Offsets {
    pub ssl_write: u64,
    pub ssl_read: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub offsets: Offsets,
    pub build_id: Option<String>,
    /// A known build's name, or None when the signature found them in this run.
    pub known: Option<String>,
    /// What the signature found, when it was searched for.
    pub signature: Option<Offsets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    build: Vec<Build>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Build {
    id: String,
    what: String,
    #[serde(flatten)]
    offsets: Offsets,
}

fn known_builds() -> &'static [Build] {
    static T: OnceLock<Vec<Build>> = OnceLock::new();
    T.get_or_init(|| {
        // Checked by a unit test; a table that does not parse must not reach a release.
        toml::from_str::<Table>(include_str!("boring_builds.toml"))
            .map(|t| t.build)
            .unwrap_or_default()
    })
}

/// SSL_write and SSL_read in an executable with BoringSSL linked in: from the table of
/// known builds, else by the signature (`search`: by the signature as well, to check the
/// table). None when it has no BoringSSL (most files: only its read-only data is read to
/// tell) or the signature does not single them out.
pub fn find(path: &Path, search: bool) -> Result<Option<Found>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Headers through the cache; sections by bounded reads of our own (the cache keeps
    // all it reads).
    let raw = f.try_clone()?;
    let cache = object::ReadCache::new(f);
    let file = object::File::parse(&cache)
        .with_context(|| format!("{}: not an ELF file", path.display()))?;
    let build_id = file
        .build_id()
        .ok()
        .flatten()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>());
    // A build id is the file's to claim: a known build's offsets are taken only where its
    // bytes open functions, so a file that lies gets no probe inside an instruction.
    let known = known_builds().iter().find(|b| {
        Some(&b.id) == build_id.as_ref()
            && opens_function(&raw, b.offsets.ssl_write)
            && opens_function(&raw, b.offsets.ssl_read)
    });
    let signature = match (known, search) {
        (Some(_), false) => None,
        _ => locate(&file, &raw)?,
    };
    Ok(match (known, signature) {
        (Some(b), _) => Some(Found {
            offsets: b.offsets,
            build_id,
            known: Some(b.what.clone()),
            signature,
        }),
        (None, Some(offsets)) => Some(Found {
            offsets,
            build_id,
            known: None,
            signature,
        }),
        (None, None) => None,
    })
}

/// The signature search (see the module's comment).
fn locate<'a, R: object::ReadRef<'a>>(
    file: &object::File<'a, R>,
    raw: &std::fs::File,
) -> Result<Option<Offsets>> {
    static SEARCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SEARCHES.load(std::sync::atomic::Ordering::Relaxed) >= SEARCHES_MAX {
        anyhow::bail!("not searched for BoringSSL's functions: {SEARCHES_MAX} searches were made in this run already");
    }
    let Some(source) = source_string(file, raw)? else {
        return Ok(None);
    };
    let Some(text) = file.section_by_name(".text") else {
        return Ok(None);
    };
    let Some((off, size)) = text.file_range().filter(|&(_, size)| size <= CODE_MAX) else {
        return Ok(None);
    };
    SEARCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let code = read_at(raw, off, size as usize).context("reading .text")?;
    let code = code.as_slice();
    let base = text.address();
    // Reasons per function, in address order.
    let mut funcs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (f, reason) in error_sites(code, base, source) {
        funcs.entry(f).or_default().push(reason);
    }
    let mut write_set = [
        SHOULD_NOT_HAVE_BEEN_CALLED,
        UNINITIALIZED,
        HANDSHAKE_FAILURE,
        BAD_LENGTH,
    ];
    write_set.sort();
    let writes: Vec<u64> = funcs
        .iter()
        .filter(|(_, r)| {
            let mut s = r.to_vec();
            s.sort();
            r.first() == Some(&SHOULD_NOT_HAVE_BEEN_CALLED) && s == write_set
        })
        .map(|(f, _)| *f)
        .collect();
    let impls: Vec<u64> = funcs
        .iter()
        .filter(|(_, r)| r.starts_with(&[UNINITIALIZED, HANDSHAKE_FAILURE]))
        .map(|(f, _)| *f)
        .collect();
    let reads: Vec<u64> = funcs
        .iter()
        .filter(|(f, r)| {
            r.as_slice() == [SHOULD_NOT_HAVE_BEEN_CALLED]
                && calls(code, base, **f, 0x200).any(|t| impls.contains(&t))
        })
        .map(|(f, _)| *f)
        .collect();
    // Exactly one of each, or nothing: a probe on the wrong function is worse than none.
    let ([w], [r]) = (writes.as_slice(), reads.as_slice()) else {
        return Ok(None);
    };
    let (Some(ssl_write), Some(ssl_read)) = (file_offset(file, *w), file_offset(file, *r)) else {
        return Ok(None);
    };
    Ok(Some(Offsets {
        ssl_write,
        ssl_read,
    }))
}

/// The address of the NUL-terminated name ending in ssl/ssl_lib.cc (a relative path whose
/// prefix varies by build), in the file's read-only data, read a piece at a time.
fn source_string<'a, R: object::ReadRef<'a>>(
    file: &object::File<'a, R>,
    raw: &std::fs::File,
) -> Result<Option<u64>> {
    let mut budget = DATA_MAX;
    for sec in file.sections() {
        if !matches!(
            sec.kind(),
            SectionKind::ReadOnlyData | SectionKind::ReadOnlyString
        ) {
            continue;
        }
        let Some((off, size)) = sec.file_range() else {
            continue;
        };
        let size = size.min(budget);
        budget -= size;
        // Pieces overlap by a path's length, so a name across two is whole in one.
        const OVERLAP: u64 = 4096;
        let mut at = 0;
        while at < size {
            let len = (size - at).min(PIECE as u64 + OVERLAP);
            let data = read_at(raw, off + at, len as usize).context("reading read-only data")?;
            for end in memchr::memmem::find_iter(&data, SOURCE) {
                // Back to the string's first byte: the NUL before it.
                let Some(nul) = data[..end].iter().rposition(|&b| b == 0) else {
                    continue;
                };
                if data[nul + 1..end].iter().all(|b| b.is_ascii_graphic()) {
                    return Ok(Some(sec.address() + at + nul as u64 + 1));
                }
            }
            at += PIECE as u64;
        }
    }
    Ok(None)
}

/// `len` bytes of the file at `off`; short where the file is.
fn read_at(f: &std::fs::File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(off))?;
    let mut buf = Vec::with_capacity(len.min(CODE_MAX as usize));
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Whether the bytes at a file offset open a function as the search finds them
/// (`starts`).
fn opens_function(f: &std::fs::File, off: u64) -> bool {
    let Some(at) = off.checked_sub(1) else {
        return false;
    };
    matches!(read_at(f, at, 5), Ok(b) if b.len() == 5 && starts(b[0], &b[1..]))
}

/// Whether `code` opens a function, `before` being the byte before it: after int3
/// padding, or a frame set up (`push rbp; mov rbp, rsp`; padding can be none).
/// BoringSSL's objects in Bun have no unwind entries to say it.
fn starts(before: u8, code: &[u8]) -> bool {
    (before == 0xcc && code.first() != Some(&0xcc)) || code.starts_with(&[0x55, 0x48, 0x89, 0xe5])
}

/// The SysV argument registers, by position, in their 64- and 32-bit names.
const ARGS: [[Register; 2]; 6] = [
    [Register::RDI, Register::EDI],
    [Register::RSI, Register::ESI],
    [Register::RDX, Register::EDX],
    [Register::RCX, Register::ECX],
    [Register::R8, Register::R8D],
    [Register::R9, Register::R9D],
];

/// Error sites naming the source: (function, reason) of each ERR_put_error call whose file
/// argument is `source` and whose library is SSL, in address order. The file name is
/// loaded as an immediate (`mov r32, imm32`, non-PIE) or rip-relative (`lea r64, [rip+d]`,
/// PIE); the library is the first argument, the reason the one before the file (the order
/// changed between BoringSSL versions: lib, reason, file, line or lib, 0, reason, file,
/// line). Each function is decoded from its start, so constants loaded before the file's
/// name count too.
fn error_sites(code: &[u8], base: u64, source: u64) -> Vec<(u64, u64)> {
    let mut refs = Vec::new();
    if let Ok(imm) = u32::try_from(source) {
        for i in memchr::memmem::find_iter(code, &imm.to_le_bytes()) {
            match (
                i.checked_sub(2).map(|j| code[j]),
                i.checked_sub(1).map(|j| code[j]),
            ) {
                (Some(0x41), Some(0xb8..=0xbf)) => refs.push(i - 2),
                (_, Some(0xb8..=0xbf)) => refs.push(i - 1),
                _ => {}
            }
        }
    }
    for i in 3..code.len().saturating_sub(4) {
        if code[i - 2] == 0x8d && matches!(code[i - 3], 0x48 | 0x4c) && code[i - 1] & 0xc7 == 0x05 {
            let d = i32::from_le_bytes(code[i..i + 4].try_into().unwrap());
            if (base + i as u64 + 4).wrapping_add(d as i64 as u64) == source {
                refs.push(i - 3);
            }
        }
    }
    if refs.len() > SITES_MAX {
        return Vec::new(); // not BoringSSL as it is known: no search of unbounded cost
    }
    // The sites by function: each function is decoded once, from its start.
    let mut by_func: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for at in refs {
        let ip = base + at as u64;
        if let Some(f) = function_start(code, base, ip) {
            by_func.entry(f).or_default().push(ip);
        }
    }
    let mut out = Vec::new();
    for (f, ips) in by_func {
        let o = (f - base) as usize;
        let last = *ips.iter().max().expect("a function has a site");
        let end = ((last - base) as usize + 64).min(code.len());
        let mut vals: [Option<u64>; 6] = [None; 6];
        // The argument holding the file's name, loaded by a site since the last call.
        let mut file_arg = None;
        for ins in Decoder::with_ip(64, &code[o..end], f, DecoderOptions::NONE) {
            if matches!(
                ins.mnemonic(),
                Mnemonic::Call | Mnemonic::Jmp | Mnemonic::Ret
            ) {
                if let Some(k @ 1..) = file_arg.take() {
                    if let (Some(LIB_SSL), Some(reason)) = (vals[0], vals[k - 1]) {
                        out.push((f, reason));
                    }
                }
                vals = [None; 6];
                continue;
            }
            let reg = ins.op0_register();
            let Some(k) = ARGS.iter().position(|r| r.contains(&reg)) else {
                continue;
            };
            let val = match (ins.mnemonic(), ins.op1_kind()) {
                (Mnemonic::Mov, OpKind::Immediate32 | OpKind::Immediate32to64) => {
                    Some(ins.immediate(1))
                }
                (Mnemonic::Lea, OpKind::Memory) if ins.is_ip_rel_memory_operand() => {
                    Some(ins.ip_rel_memory_address())
                }
                (Mnemonic::Xor, OpKind::Register) if ins.op1_register() == ins.op0_register() => {
                    Some(0)
                }
                _ => None,
            };
            if val == Some(source) && ips.contains(&ins.ip()) {
                file_arg = Some(k);
            }
            vals[k] = val;
        }
    }
    out
}

/// The start of the function holding `at`: the nearest 16-byte boundary that `starts` one.
fn function_start(code: &[u8], base: u64, at: u64) -> Option<u64> {
    let mut p = at & !15;
    while p + 0x4000 > at && p > base {
        let o = (p - base) as usize;
        if starts(code[o - 1], &code[o..]) {
            return Some(p);
        }
        p -= 16;
    }
    None
}

/// Targets of direct calls (`call rel32`) in the first `len` bytes of the function at `f`.
fn calls(code: &[u8], base: u64, f: u64, len: usize) -> impl Iterator<Item = u64> + '_ {
    let o = (f - base) as usize;
    let body = &code[o..(o + len).min(code.len())];
    (0..body.len().saturating_sub(5)).filter_map(move |k| {
        (body[k] == 0xe8).then(|| {
            let d = i32::from_le_bytes(body[k + 1..k + 5].try_into().unwrap());
            (f + k as u64 + 5).wrapping_add(d as i64 as u64)
        })
    })
}

/// A virtual address's offset in the file, through the loadable segments.
fn file_offset<'a, R: object::ReadRef<'a>>(file: &object::File<'a, R>, addr: u64) -> Option<u64> {
    file.segments().find_map(|s| {
        let (off, size) = s.file_range();
        (s.address() <= addr && addr < s.address() + size).then(|| addr - s.address() + off)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_known_builds_parses() {
        let t: Table = toml::from_str(include_str!("boring_builds.toml")).unwrap();
        assert!(!t.build.is_empty());
        for b in &t.build {
            assert_eq!(b.id.len(), 40, "{}: a GNU build id in hex", b.what);
            assert_ne!(b.offsets.ssl_write, b.offsets.ssl_read);
        }
    }

    /// An error site as the compiler emits it (newer order: lib, 0, reason, file, line),
    /// then the call.
    fn site(reason: u8, file: u32) -> Vec<u8> {
        let mut c = vec![0xbf, 16, 0, 0, 0]; // mov edi, 16
        c.extend([0x31, 0xf6]); // xor esi, esi
        c.extend([0xba, reason, 0, 0, 0]); // mov edx, reason
        c.push(0xb9); // mov ecx, file
        c.extend(file.to_le_bytes());
        c.extend([0x41, 0xb8, 0x2a, 0, 0, 0]); // mov r8d, 42 (the line)
        c.extend([0xe8, 0, 0, 0, 0]); // call
        c
    }

    #[test]
    fn error_sites_give_their_reason_where_the_file_is_named() {
        let file = 0x40_1000;
        let mut code = vec![0xcc; 16];
        code.extend(site(0x42, file));
        // Another file's: not a site.
        code.extend(site(0xe2, file + 1));
        // Both in the function after the padding; one names the file.
        assert_eq!(error_sites(&code, 0x1000, file as u64), [(0x1010, 0x42)]);
        assert_eq!(function_start(&code, 0x1000, 0x1000 + 40), Some(0x1010));
    }
}
