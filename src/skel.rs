//! The skeletons libbpf-cargo generates from the linked BPF objects (build.rs), one module
//! each, at the bottom of the crate: the modules that load an object use its skeleton,
//! and abi.rs names the kernel/user types they hold for everyone else.
#![allow(clippy::all, dead_code, non_camel_case_types, unused_imports)]

pub mod sensor {
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}

pub mod enforce {
    include!(concat!(env!("OUT_DIR"), "/enforce.skel.rs"));
}

pub mod egress {
    include!(concat!(env!("OUT_DIR"), "/egress.skel.rs"));
}

pub mod probe {
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}

pub mod endpoint {
    include!(concat!(env!("OUT_DIR"), "/endpoint.skel.rs"));
}
