fn main() {
    std::process::exit(mtlscope::cli::main());
}
