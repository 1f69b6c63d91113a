//! The one Rust view of what the kernel side defines in src/bpf/policy.h: the access bits
//! a path rule grants, the rule flags, and why a denial happened, as the enforce
//! skeleton generates them. A meaning is written once, in C; this file names it for Rust.
use crate::event::Access;
pub use crate::skel::enforce::types::{
    ag_access, ag_deny_op, ag_dir, ag_glob, ag_name_rule, ag_net_rule, ag_rule_flags, ag_rule_id,
};

/// A policy value user space writes into a BPF map, as the bytes the map takes.
///
/// # Safety
/// Only for `#[repr(C)]` types generated from policy.h that have no implicit padding
/// (policy.h writes each pad out as a field): every byte of a value is then initialised.
/// The test below checks that each one's fields fill its size.
pub unsafe trait MapValue: Copy {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the trait's contract: plain old data, every byte initialised.
        unsafe {
            std::slice::from_raw_parts(
                (self as *const Self).cast::<u8>(),
                std::mem::size_of::<Self>(),
            )
        }
    }
}

// SAFETY: generated from policy.h, without implicit padding (checked below).
unsafe impl MapValue for ag_glob {}
unsafe impl MapValue for ag_dir {}
unsafe impl MapValue for ag_net_rule {}
unsafe impl MapValue for ag_name_rule {}

/// Each access a path rule can grant, with its bit. `path` (O_PATH) has none: such an
/// open reaches no LSM hook.
pub const ACCESS_BITS: [(Access, u32); 13] = [
    (Access::Read, ag_access::AG_ACC_READ.0),
    (Access::Write, ag_access::AG_ACC_WRITE.0),
    (Access::Append, ag_access::AG_ACC_APPEND.0),
    (Access::Create, ag_access::AG_ACC_CREATE.0),
    (Access::Truncate, ag_access::AG_ACC_TRUNCATE.0),
    (Access::List, ag_access::AG_ACC_LIST.0),
    (Access::Delete, ag_access::AG_ACC_DELETE.0),
    (Access::Rename, ag_access::AG_ACC_RENAME.0),
    (Access::Chmod, ag_access::AG_ACC_CHMOD.0),
    (Access::Mkdir, ag_access::AG_ACC_MKDIR.0),
    (Access::Link, ag_access::AG_ACC_LINK.0),
    (Access::Symlink, ag_access::AG_ACC_SYMLINK.0),
    (Access::Times, ag_access::AG_ACC_TIMES.0),
];

/// The bit of one access (0 for `path`).
pub fn bit(a: Access) -> u32 {
    ACCESS_BITS
        .iter()
        .find(|(x, _)| *x == a)
        .map_or(0, |(_, b)| *b)
}

/// The accesses whose bits are set.
pub fn accesses(bits: u64) -> Vec<Access> {
    ACCESS_BITS
        .iter()
        .filter(|(_, b)| bits & u64::from(*b) != 0)
        .map(|(a, _)| *a)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_access_but_path_has_its_own_bit_and_exec_is_none_of_them() {
        let mut all = 0u32;
        for (a, b) in ACCESS_BITS {
            assert_eq!(b.count_ones(), 1, "{a:?}");
            assert_eq!(all & b, 0, "{a:?} shares a bit");
            all |= b;
            assert_eq!(accesses(u64::from(b)), vec![a]);
        }
        assert_eq!(all & ag_access::AG_ACC_EXEC.0, 0);
        assert_eq!(bit(Access::Path), 0);
    }

    /// MapValue's contract: no type a map update copies has padding the compiler added,
    /// whose bytes would be uninitialised.
    #[test]
    fn map_values_have_no_implicit_padding() {
        use std::mem::{size_of, size_of_val as n};
        let g = ag_glob::default();
        let s = g.seg[0];
        let seg = n(&s.star) + n(&s.plen) + n(&s.slen) + n(&s.pad) + n(&s.pre) + n(&s.suf);
        assert_eq!(size_of::<crate::skel::enforce::types::ag_seg>(), seg);
        assert_eq!(
            size_of::<ag_glob>(),
            n(&g.grant) + n(&g.flags) + n(&g.nseg) + n(&g.id) + n(&g.seg)
        );
        let d = ag_dir::default();
        assert_eq!(size_of::<ag_dir>(), n(&d.n) + n(&d.idx));
        let r = ag_net_rule::default();
        assert_eq!(
            size_of::<ag_net_rule>(),
            n(&r.family)
                + n(&r.sotype)
                + n(&r.port_lo)
                + n(&r.port_hi)
                + n(&r.prefixlen)
                + n(&r.id)
                + n(&r.addr)
                + n(&r.unix_hash)
        );
        let h = ag_name_rule::default();
        assert_eq!(
            size_of::<ag_name_rule>(),
            n(&h.sotype)
                + n(&h.port_lo)
                + n(&h.port_hi)
                + n(&h.private_ok)
                + n(&h.pad)
                + n(&h.id)
                + n(&h.pad2)
        );
    }

    /// The capacities user space fills are those policy.h gave the generated arrays.
    #[test]
    fn the_rust_capacities_are_the_generated_arrays() {
        use crate::enforce::compile::{SEGS, SEG_LIT};
        use crate::skel::enforce::types::{ag_dir, ag_glob, ag_seg};
        assert_eq!(ag_glob::default().seg.len(), SEGS);
        assert_eq!(ag_seg::default().pre.len(), SEG_LIT);
        assert_eq!(ag_seg::default().suf.len(), SEG_LIT);
        assert_eq!(ag_dir::default().idx.len(), crate::enforce::lsm::DIR_RULES);
    }
}
