//! TLS linked into an executable without its symbols, found by what the code is; the probes
//! then go on the functions as on a library's exported ones. Two signatures, both of
//! BoringSSL's code (AWS-LC is its fork):
//!
//! - BoringSSL's SSL_write and SSL_read (Bun, and so Claude Code, a Bun executable), which
//!   take and return what OpenSSL's do.
//! - EVP_AEAD_CTX_seal and _open of BoringSSL's or AWS-LC's crypto (rustls on aws-lc-rs, and
//!   so Codex), which seal and open each TLS record (payload.bpf.c reads TLS 1.3's).
//!
//! Both report errors with OPENSSL_PUT_ERROR, which passes the library, the reason code and
//! the source file's name as constants. SSL_write is the one function of ssl_lib.cc raising
//! exactly {SHOULD_NOT_HAVE_BEEN_CALLED (its QUIC check, first), UNINITIALIZED,
//! SSL_HANDSHAKE_FAILURE, BAD_LENGTH}; SSL_read raises only the first and calls
//! ssl_read_impl, whose first two are UNINITIALIZED and SSL_HANDSHAKE_FAILURE.
//! EVP_AEAD_CTX_seal is the one function of aead.c raising exactly {TOO_LARGE,
//! BUFFER_TOO_SMALL, OUTPUT_ALIASES_INPUT}, in that order; EVP_AEAD_CTX_open the one whose
//! first three are OUTPUT_ALIASES_INPUT, BAD_DECRYPT, BUFFER_TOO_SMALL. Reason codes, not
//! line numbers: lines move between versions. Executables whose functions were found this
//! way are kept by build id in boring_builds.toml (`agentguard doctor --tls FILE` prints an
//! entry), which spares a known build the search.
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
const LIB_CIPHER: u64 = 30;
const BAD_DECRYPT: u64 = 0x65;
const BUFFER_TOO_SMALL: u64 = 0x67;
const OUTPUT_ALIASES_INPUT: u64 = 0x73;
const TOO_LARGE: u64 = 0x75;
/// The source files whose error sites name the functions, each signature's.
const SSL_SOURCE: &[u8] = b"ssl/ssl_lib.cc\0";
const AEAD_SOURCE: &[u8] = b"crypto/fipsmodule/cipher/aead.c\0";
/// The most of a file's code the search reads, a piece at a time: a tree can exec a file
/// claiming any size (a sparse one), and the search runs in agentguard. Bun's code is about
/// 130 MB, Codex's 250 MB.
const CODE_MAX: u64 = 1 << 30;
/// The most of its read-only data scanned for the source's name, a piece at a time.
const DATA_MAX: u64 = 1 << 30;
const PIECE: usize = 16 << 20;
/// Error sites naming the source, at most: BoringSSL's ssl_lib.cc has about a hundred.
/// Each function holding some is decoded once, from its start.
const SITES_MAX: usize = 1024;
/// Signature searches per run: each reads its executable's code, in the loop that reads
/// the sensor's events, so a tree that execs many such files cannot stall it for long.
const SEARCHES_MAX: usize = 8;

/// Which functions were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Library {
    /// BoringSSL's SSL_write and SSL_read.
    Boringssl,
    /// EVP_AEAD_CTX_seal and _open (AWS-LC's, or BoringSSL's crypto).
    Aead,
}

impl Library {
    /// Its name in the table (boring_builds.toml).
    pub fn key(self) -> &'static str {
        match self {
            Library::Boringssl => "boringssl",
            Library::Aead => "aead",
        }
    }
}

/// Where the writing and the reading function are: file offsets, as uprobes take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Located {
    pub library: Library,
    pub write: u64,
    pub read: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub at: Located,
    pub build_id: Option<String>,
    /// A known build's name, or None when the signature found them in this run.
    pub known: Option<String>,
    /// What the signature found, when it was searched for.
    pub signature: Option<Located>,
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
    at: Located,
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

/// The functions to probe in an executable with BoringSSL or AWS-LC linked in: from the
/// table of known builds, else by a signature (`search`: by the signature as well, to check
/// the table). None when it has neither (most files: only its read-only data is read to
/// tell) or no signature singles them out.
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
    let opens = |at: &Located| opens_function(&raw, at.write) && opens_function(&raw, at.read);
    let known = known_builds()
        .iter()
        .find(|b| Some(&b.id) == build_id.as_ref() && opens(&b.at))
        .map(|b| (b.at, b.what.clone()));
    // What an earlier run's search found in this very file, if the code says the same.
    let known = known.or_else(|| {
        let (kept, source) = (!search).then(|| super::found::get(&raw)).flatten()?;
        confirms(&file, &raw, &kept, source).then(|| {
            (
                kept,
                "this file, found by the search in an earlier run".to_string(),
            )
        })
    });
    let (signature, source) = match (&known, search) {
        (Some(_), false) => (None, None),
        _ => match locate(&file, &raw)? {
            Some((at, source)) => (Some(at), Some(source)),
            None => (None, None),
        },
    };
    Ok(match (known, signature) {
        (Some((at, what)), _) => Some(Found {
            at,
            build_id,
            known: Some(what),
            signature,
        }),
        (None, Some(at)) => {
            if let Some(source) = source {
                super::found::put(&raw, at, source);
            }
            Some(Found {
                at,
                build_id,
                known: None,
                signature,
            })
        }
        (None, None) => None,
    })
}

/// The signature search (see the module's comment): BoringSSL's SSL functions where its
/// ssl_lib.cc is named, else the AEAD's where aead.c is.
fn locate<'a, R: object::ReadRef<'a>>(
    file: &object::File<'a, R>,
    raw: &std::fs::File,
) -> Result<Option<(Located, u64)>> {
    static SEARCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SEARCHES.load(std::sync::atomic::Ordering::Relaxed) >= SEARCHES_MAX {
        anyhow::bail!("not searched for BoringSSL's functions: {SEARCHES_MAX} searches were made in this run already");
    }
    let [ssl, aead] = source_strings(file, raw, [SSL_SOURCE, AEAD_SOURCE])?;
    if ssl.is_none() && aead.is_none() {
        return Ok(None);
    }
    let Some(text) = file.section_by_name(".text") else {
        return Ok(None);
    };
    let Some((off, size)) = text.file_range().filter(|&(_, size)| size <= CODE_MAX) else {
        return Ok(None);
    };
    SEARCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let text = (off, size, text.address());
    let found = match ssl {
        // No unwind table for the SSL functions: Bun's BoringSSL objects have no entries
        // in it, so there an earlier function's start would be taken for theirs.
        Some(source) => windows(raw, text, source)?
            .and_then(|parts| ssl_functions(&view(&parts, None), source))
            .map(|f| (f, source)),
        None => None,
    };
    let found = match (found, aead) {
        (Some(f), _) => Some(f),
        (None, Some(source)) => {
            let starts = unwind_starts(file, raw);
            windows(raw, text, source)?
                .and_then(|parts| aead_functions(&view(&parts, starts.as_deref()), source))
                .map(|f| (f, source))
        }
        (None, None) => None,
    };
    let Some(((library, w, r), source)) = found else {
        return Ok(None);
    };
    let (Some(write), Some(read)) = (file_offset(file, w), file_offset(file, r)) else {
        return Ok(None);
    };
    Ok(Some((
        Located {
            library,
            write,
            read,
        },
        source,
    )))
}

/// Whether what an earlier run found in this file (kept by found.rs, which the tree can
/// write) is what the signature would find: the source file's name is at `source`, and
/// each function raises what its part in the signature says, naming it. So a kept entry
/// can put a probe nowhere else, whatever it says.
fn confirms<'a, R: object::ReadRef<'a>>(
    file: &object::File<'a, R>,
    raw: &std::fs::File,
    at: &Located,
    source: u64,
) -> bool {
    let (name, lib) = match at.library {
        Library::Boringssl => (SSL_SOURCE, LIB_SSL),
        Library::Aead => (AEAD_SOURCE, LIB_CIPHER),
    };
    let Some(text) = file_offset(file, source).and_then(|o| read_at(raw, o, 4096).ok()) else {
        return false;
    };
    let Some(nul) = text.iter().position(|&b| b == 0) else {
        return false;
    };
    if !text[..=nul].ends_with(name) || !text[..nul].iter().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let starts = match at.library {
        Library::Aead => unwind_starts(file, raw),
        Library::Boringssl => None,
    };
    let reasons_at = |off: u64| -> Option<Vec<u64>> {
        let addr = address_of(file, off)?;
        let bytes = read_at(raw, off.checked_sub(16)?, 0x4010).ok()?;
        let code = Code {
            bytes: &bytes,
            base: addr - 16,
            starts: starts.as_deref(),
        };
        reasons(&[code], source, lib).remove(&addr)
    };
    let (Some(w), Some(r)) = (reasons_at(at.write), reasons_at(at.read)) else {
        return false;
    };
    match at.library {
        Library::Boringssl => is_ssl_write(&w) && r == [SHOULD_NOT_HAVE_BEEN_CALLED],
        Library::Aead => is_seal(&w) && is_open(&r),
    }
}

/// BoringSSL's SSL_write: exactly its four reasons, its QUIC check first.
fn is_ssl_write(r: &[u64]) -> bool {
    let mut want = [
        SHOULD_NOT_HAVE_BEEN_CALLED,
        UNINITIALIZED,
        HANDSHAKE_FAILURE,
        BAD_LENGTH,
    ];
    want.sort();
    let mut s = r.to_vec();
    s.sort();
    r.first() == Some(&SHOULD_NOT_HAVE_BEEN_CALLED) && s == want
}

/// EVP_AEAD_CTX_seal: exactly its three reasons, in order.
fn is_seal(r: &[u64]) -> bool {
    r == [TOO_LARGE, BUFFER_TOO_SMALL, OUTPUT_ALIASES_INPUT]
}

/// EVP_AEAD_CTX_open: its first three reasons, in order.
fn is_open(r: &[u64]) -> bool {
    r.starts_with(&[OUTPUT_ALIASES_INPUT, BAD_DECRYPT, BUFFER_TOO_SMALL])
}

/// A part of an executable's code read: its bytes, and their address.
type Part = (Vec<u8>, u64);

/// Code views of the parts of it read, with where functions start.
fn view<'a>(parts: &'a [Part], starts: Option<&'a [u64]>) -> Vec<Code<'a>> {
    parts
        .iter()
        .map(|(bytes, base)| Code {
            bytes,
            base: *base,
            starts,
        })
        .collect()
}

/// An executable's code: its bytes, their address, and where its functions start when its
/// unwind table says (sorted).
#[derive(Clone, Copy)]
struct Code<'a> {
    bytes: &'a [u8],
    base: u64,
    starts: Option<&'a [u64]>,
}

/// Reasons per function, in address order, of the error sites naming `source` in `lib`.
fn reasons(codes: &[Code], source: u64, lib: u64) -> BTreeMap<u64, Vec<u64>> {
    let mut funcs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for code in codes {
        for (f, reason) in error_sites(code, source, lib) {
            funcs.entry(f).or_default().push(reason);
        }
    }
    funcs
}

/// BoringSSL's SSL_write and SSL_read: exactly one of each, or nothing (a probe on the
/// wrong function is worse than none).
fn ssl_functions(codes: &[Code], source: u64) -> Option<(Library, u64, u64)> {
    let funcs = reasons(codes, source, LIB_SSL);
    let writes: Vec<u64> = funcs
        .iter()
        .filter(|(_, r)| is_ssl_write(r))
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
                && codes
                    .iter()
                    .find(|c| c.base <= **f && **f < c.base + c.bytes.len() as u64)
                    .is_some_and(|c| calls(c, **f, 0x200).any(|t| impls.contains(&t)))
        })
        .map(|(f, _)| *f)
        .collect();
    match (writes.as_slice(), reads.as_slice()) {
        ([w], [r]) => Some((Library::Boringssl, *w, *r)),
        _ => None,
    }
}

/// EVP_AEAD_CTX_seal and _open: exactly one of each, or nothing.
fn aead_functions(codes: &[Code], source: u64) -> Option<(Library, u64, u64)> {
    let funcs = reasons(codes, source, LIB_CIPHER);
    let one = |want: &dyn Fn(&[u64]) -> bool| {
        let mut it = funcs.iter().filter(|(_, r)| want(r)).map(|(f, _)| *f);
        match (it.next(), it.next()) {
            (Some(f), None) => Some(f),
            _ => None,
        }
    };
    let seal = one(&is_seal)?;
    let open = one(&is_open)?;
    Some((Library::Aead, seal, open))
}

/// Where functions start, from the binary search table of .eh_frame_hdr (each FDE's
/// initial location), when it has the usual encoding; sorted.
fn unwind_starts<'a, R: object::ReadRef<'a>>(
    file: &object::File<'a, R>,
    raw: &std::fs::File,
) -> Option<Vec<u64>> {
    let sec = file.section_by_name(".eh_frame_hdr")?;
    let (off, size) = sec.file_range().filter(|&(_, size)| size <= 64 << 20)?;
    let d = read_at(raw, off, size as usize).ok()?;
    // version 1; eh_frame_ptr a signed 4-byte value; fde_count udata4; the table
    // datarel|sdata4 pairs (initial location, FDE), relative to the section's start.
    if d.len() < 12 || d[0] != 1 || d[1] & 0x0f != 0x0b || d[2] != 0x03 || d[3] != 0x3b {
        return None;
    }
    let count = u32::from_le_bytes(d[8..12].try_into().ok()?) as usize;
    let table = d.get(12..12 + count.checked_mul(8)?)?;
    let mut starts: Vec<u64> = table
        .chunks_exact(8)
        .map(|e| {
            let loc = i32::from_le_bytes(e[..4].try_into().expect("4 bytes"));
            sec.address().wrapping_add(loc as i64 as u64)
        })
        .collect();
    starts.sort_unstable();
    Some(starts)
}

/// The address of each NUL-terminated name ending in `names` (relative paths whose prefix
/// varies by build), in the file's read-only data, read a piece at a time.
fn source_strings<'a, R: object::ReadRef<'a>, const N: usize>(
    file: &object::File<'a, R>,
    raw: &std::fs::File,
    names: [&[u8]; N],
) -> Result<[Option<u64>; N]> {
    let mut found = [None; N];
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
            for (name, slot) in names.iter().zip(found.iter_mut()) {
                if slot.is_some() {
                    continue;
                }
                for end in memchr::memmem::find_iter(&data, name) {
                    // Back to the string's first byte: the NUL before it.
                    let Some(nul) = data[..end].iter().rposition(|&b| b == 0) else {
                        continue;
                    };
                    if data[nul + 1..end].iter().all(|b| b.is_ascii_graphic()) {
                        *slot = Some(sec.address() + at + nul as u64 + 1);
                        break;
                    }
                }
            }
            if found.iter().all(Option::is_some) {
                return Ok(found);
            }
            at += PIECE as u64;
        }
    }
    Ok(found)
}

/// `len` bytes of the file at `off`; short where the file is.
fn read_at(f: &std::fs::File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(off))?;
    let mut buf = Vec::with_capacity(len.min(PIECE + 4096));
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
/// argument is `source` and whose library is `lib`, in address order. The file name is
/// loaded as an immediate (`mov r32, imm32`, non-PIE) or rip-relative (`lea r64, [rip+d]`,
/// PIE); the library is the first argument, the reason the one before the file (the order
/// changed between BoringSSL versions: lib, reason, file, line or lib, 0, reason, file,
/// line). Each function is decoded from its start, so constants loaded before the file's
/// name count too.
fn error_sites(c: &Code, source: u64, lib: u64) -> Vec<(u64, u64)> {
    let (code, base) = (c.bytes, c.base);
    let refs = refs(code, base, source);
    if refs.len() > SITES_MAX {
        return Vec::new(); // not BoringSSL as it is known: no search of unbounded cost
    }
    // The sites by function: each function is decoded once, from its start.
    let mut by_func: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for ip in refs {
        if let Some(f) = function_start(c, ip) {
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
                    if let (Some(l), Some(reason)) = (vals[0], vals[k - 1]) {
                        if l == lib {
                            out.push((f, reason));
                        }
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

/// Addresses of the instructions in `code` (at `base`) that load `source`'s address: as an
/// immediate (`mov r32, imm32`, non-PIE) or rip-relative (`lea r64, [rip+d]`, PIE).
fn refs(code: &[u8], base: u64, source: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if let Ok(imm) = u32::try_from(source) {
        for i in memchr::memmem::find_iter(code, &imm.to_le_bytes()) {
            match (
                i.checked_sub(2).map(|j| code[j]),
                i.checked_sub(1).map(|j| code[j]),
            ) {
                (Some(0x41), Some(0xb8..=0xbf)) => out.push(base + i as u64 - 2),
                (_, Some(0xb8..=0xbf)) => out.push(base + i as u64 - 1),
                _ => {}
            }
        }
    }
    // REX.W 8d /r with a rip-relative operand, then the displacement: found by its opcode
    // byte, which memchr finds fast.
    for k in memchr::memchr_iter(0x8d, code) {
        let (Some(&rex), Some(&modrm), Some(d)) = (
            k.checked_sub(1).map(|j| &code[j]),
            code.get(k + 1),
            code.get(k + 2..k + 6),
        ) else {
            continue;
        };
        if matches!(rex, 0x48 | 0x4c) && modrm & 0xc7 == 0x05 {
            let d = i32::from_le_bytes(d.try_into().expect("4 bytes"));
            if (base + k as u64 + 6).wrapping_add(d as i64 as u64) == source {
                out.push(base + k as u64 - 1);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The parts of the code (.text at `text`: file offset, size, address) around the
/// instructions that load `source`'s address, found by reading it a piece at a time: each
/// part's bytes, and its address. The instructions are grouped where they lie within
/// `GAP` of each other (a source file's functions lie together; an immediate that merely
/// equals the address lies anywhere). None when there are more than SITES_MAX.
fn windows(
    raw: &std::fs::File,
    (off, size, base): (u64, u64, u64),
    source: u64,
) -> Result<Option<Vec<Part>>> {
    const GAP: u64 = 1 << 20;
    const WINDOWS_MAX: u64 = 64 << 20;
    // Pieces overlap by an instruction's length, so one across two is whole in one.
    const OVERLAP: u64 = 16;
    let mut found = std::collections::BTreeSet::new();
    let mut at = 0;
    while at < size {
        let len = (size - at).min(PIECE as u64 + OVERLAP);
        let piece = read_at(raw, off + at, len as usize).context("reading .text")?;
        found.extend(refs(&piece, base + at, source));
        if found.len() > SITES_MAX {
            return Ok(None); // not BoringSSL as it is known: no search of unbounded cost
        }
        at += PIECE as u64;
    }
    let mut groups: Vec<(u64, u64)> = Vec::new();
    for r in found {
        match groups.last_mut() {
            Some((_, hi)) if r - *hi <= GAP => *hi = r,
            _ => groups.push((r, r)),
        }
    }
    let mut out = Vec::new();
    let mut total = 0;
    for (lo, hi) in groups {
        // Back far enough for function_start, on for the decoding past the last site and
        // SSL_read's calls.
        let lo = lo.saturating_sub(0x10010).max(base);
        let hi = (hi + 0x1000).min(base + size);
        // Sites strewn so that the parts would be larger than any library's error sites
        // need: not the code the signature knows.
        total += hi - lo;
        if total > WINDOWS_MAX {
            return Ok(None);
        }
        let bytes = read_at(raw, off + (lo - base), (hi - lo) as usize).context("reading .text")?;
        out.push((bytes, lo));
    }
    Ok(Some(out))
}

/// The start of the function holding `at`: by the unwind table where the code has one,
/// else the nearest 16-byte boundary that `starts` one.
fn function_start(c: &Code, at: u64) -> Option<u64> {
    let (code, base) = (c.bytes, c.base);
    if let Some(starts) = c.starts {
        let i = starts.partition_point(|&s| s <= at);
        return i
            .checked_sub(1)
            .map(|i| starts[i])
            .filter(|&s| s >= base && at - s < 0x10000);
    }
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
fn calls<'a>(c: &Code<'a>, f: u64, len: usize) -> impl Iterator<Item = u64> + 'a {
    let o = (f - c.base) as usize;
    let body = &c.bytes[o..(o + len).min(c.bytes.len())];
    (0..body.len().saturating_sub(5)).filter_map(move |k| {
        (body[k] == 0xe8).then(|| {
            let d = i32::from_le_bytes(body[k + 1..k + 5].try_into().unwrap());
            (f + k as u64 + 5).wrapping_add(d as i64 as u64)
        })
    })
}

/// A file offset's virtual address, through the loadable segments.
fn address_of<'a, R: object::ReadRef<'a>>(file: &object::File<'a, R>, off: u64) -> Option<u64> {
    file.segments().find_map(|s| {
        let (start, size) = s.file_range();
        (start <= off && off < start.checked_add(size)?).then(|| s.address() + (off - start))
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
            assert_ne!(b.at.write, b.at.read);
        }
    }

    /// An error site as the compiler emits it (newer order: lib, 0, reason, file, line),
    /// then the call.
    fn site(reason: u8, file: u32) -> Vec<u8> {
        lib_site(16, reason, file)
    }

    fn lib_site(lib: u8, reason: u8, file: u32) -> Vec<u8> {
        let mut c = vec![0xbf, lib, 0, 0, 0]; // mov edi, lib
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
        let c = Code {
            bytes: &code,
            base: 0x1000,
            starts: None,
        };
        assert_eq!(error_sites(&c, file as u64, LIB_SSL), [(0x1010, 0x42)]);
        assert_eq!(error_sites(&c, file as u64, LIB_CIPHER), []);
        assert_eq!(function_start(&c, 0x1000 + 40), Some(0x1010));
        // By the unwind table where there is one.
        let c = Code {
            starts: Some(&[0x1000, 0x1018]),
            ..c
        };
        assert_eq!(function_start(&c, 0x1000 + 40), Some(0x1018));
    }

    /// A function at a 16-byte boundary after int3 padding, raising CIPHER's `reasons`
    /// naming `file`.
    fn function(code: &mut Vec<u8>, reasons: &[u8], file: u32) -> u64 {
        while !code.len().is_multiple_of(16) || code.last() != Some(&0xcc) {
            code.push(0xcc);
        }
        let at = code.len() as u64;
        code.extend([0x55, 0x48, 0x89, 0xe5]); // push rbp; mov rbp, rsp
        for &r in reasons {
            code.extend(lib_site(LIB_CIPHER as u8, r, file));
        }
        code.push(0xc3);
        at
    }

    #[test]
    fn the_aead_signature_singles_out_seal_and_open_or_finds_nothing() {
        let file = 0x40_2000;
        let base = 0x1000;
        let mut code = vec![0xcc; 16];
        let seal_scatter = function(&mut code, &[0x70, 0x73], file);
        let seal = function(&mut code, &[0x75, 0x67, 0x73], file);
        let open = function(&mut code, &[0x73, 0x65, 0x67, 0x73, 0x68], file);
        function(&mut code, &[0x73, 0x68], file);
        let c = Code {
            bytes: &code,
            base,
            starts: None,
        };
        assert_ne!(seal_scatter, seal);
        assert_eq!(
            aead_functions(&[c], file as u64),
            Some((Library::Aead, base + seal, base + open))
        );
        // By the unwind table's starts too.
        let starts = [base + 16, base + seal_scatter, base + seal, base + open];
        let c = Code {
            starts: Some(&starts),
            ..c
        };
        assert_eq!(
            aead_functions(&[c], file as u64),
            Some((Library::Aead, base + seal, base + open))
        );
        // Two functions that look like seal: neither is taken.
        function(&mut code, &[0x75, 0x67, 0x73], file);
        let c = Code {
            bytes: &code,
            base,
            starts: None,
        };
        assert_eq!(aead_functions(&[c], file as u64), None);
    }

    #[test]
    fn references_are_found_by_their_encoding() {
        // lea rax, [rip+d] at 0x1000 naming 0x2000; mov ecx, 0x2000; and a lea elsewhere.
        let mut code = vec![0x48, 0x8d, 0x05];
        code.extend((0x2000i32 - 0x1007).to_le_bytes());
        code.extend([0xb9, 0x00, 0x20, 0, 0]);
        code.extend([0x4c, 0x8d, 0x0d, 0, 0, 0, 0]);
        assert_eq!(refs(&code, 0x1000, 0x2000), [0x1000, 0x1007]);
    }
}
