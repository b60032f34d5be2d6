//! This crate's tests, benches and examples find libtorch (and, with `metaworld`, libpython), and
//! the op counter (`cpp/op_counter.cpp`) is built against the headers of the same libtorch.
include!("../scripts/link_libtorch.rs");

fn main() {
    link_libtorch_and_libpython();
    build_op_counter();
}

/// Compiles the RecordFunction observer against the libtorch that `torch-sys` links: its headers
/// sit next to its libraries (`torch/include` beside `torch/lib` in a wheel, `include` beside `lib`
/// in a libtorch archive).
fn build_op_counter() {
    println!("cargo:rerun-if-changed=cpp/op_counter.cpp");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports where libtorch lies (DEP_TCH_LIBTORCH_LIB)");
    let include = std::path::Path::new(&lib).join("../include");
    // The wheels of torch 2.11 (the only libtorch tch 0.24 accepts) use the C++11 string ABI.
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("cpp/op_counter.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .pic(true)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .warnings(false)
        .compile("mt10_op_counter");
}
