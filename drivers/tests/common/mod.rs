//! Shared by the drivers' test binaries.
#![allow(dead_code)]

pub mod emulated;
pub mod heap;
