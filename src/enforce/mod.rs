//! `agentguard enforce`: a saved profile enforced in the kernel through BPF LSM.
pub mod compile;
