//! The `mt10` binary finds libtorch and libpython by itself: nothing to export before running it.
include!("../scripts/link_libtorch.rs");

fn main() {
    link_libtorch_and_libpython();
}
