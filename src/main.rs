// mimalloc: frees of flows made on the engine thread and dropped on the judging thread cost
// glibc's malloc an arena lock each; see README, Speed and memory. `no_thp` keeps its arenas
// off transparent huge pages, which would otherwise count whole 2 MiB pages in peak RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`mimalloc.h`); `libmimalloc-sys`
/// names no constant for it. The test below checks the index against the option's default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds mimalloc waits before it gives freed memory back to the system. Its default,
/// 1000, keeps every flow freed in the last second resident. On the benchmark (2 GB, 41,773
/// flows; medians of 4 runs) 10, mimalloc 2's default, took peak RSS from 59.9 to 56.5 MiB
/// with `--format json` and from 71.9 to 66.9 MiB with the table, for about 2% more time.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

fn main() {
    // An explicit MIMALLOC_PURGE_DELAY in the environment still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores one integer in mimalloc's option table; it is not
        // thread-safe, and no other thread exists yet.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    std::process::exit(mtlscope::cli::main());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("skipped: MIMALLOC_PURGE_DELAY is set, so the default cannot be seen");
            return;
        }
        // SAFETY: reads one integer from mimalloc's option table.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // mimalloc 3's default purge delay; no neighbouring option defaults to 1000.
        assert_eq!(default, 1000, "option {MI_OPTION_PURGE_DELAY} is not mimalloc's purge delay");
    }
}
