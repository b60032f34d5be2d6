//! This crate's tests find libtorch (and, with `metaworld`, libpython).
include!("../scripts/link_libtorch.rs");

fn main() {
    link_libtorch_and_libpython();
}
