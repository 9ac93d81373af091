// mimalloc: frees of flows made on the engine thread and dropped on the judging thread cost
// glibc's malloc an arena lock each; see README, Speed and memory. `no_thp` keeps its arenas
// off transparent huge pages, which would otherwise count whole 2 MiB pages in peak RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(mtlscope::cli::main());
}
