//! The one Rust view of what the kernel side defines in src/bpf/policy.h: the access bits
//! a path rule grants, the rule flags, and why a denial happened, as the enforce
//! skeleton generates them. A meaning is written once, in C; this file names it for Rust.
pub use crate::enforce::lsm::skel::types::{ag_access, ag_deny_op, ag_rule_flags, ag_rule_id};
use crate::event::Access;

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

    /// The capacities user space fills are those policy.h gave the generated arrays.
    #[test]
    fn the_rust_capacities_are_the_generated_arrays() {
        use crate::enforce::compile::{SEGS, SEG_LIT};
        use crate::enforce::lsm::skel::types::{ag_dir, ag_glob, ag_seg};
        assert_eq!(ag_glob::default().seg.len(), SEGS);
        assert_eq!(ag_seg::default().pre.len(), SEG_LIT);
        assert_eq!(ag_seg::default().suf.len(), SEG_LIT);
        assert_eq!(ag_dir::default().idx.len(), crate::enforce::lsm::DIR_RULES);
    }
}
