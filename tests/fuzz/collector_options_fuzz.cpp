// tests/fuzz/collector_options_fuzz.cpp - libFuzzer target for the log
// collector's command line (examples/log_collector/options.cpp).
//
// The input is argv: arguments separated by NUL bytes. A --sources FILE
// argument reads a file; here FILE is always an in-memory file (memfd) that
// holds the input's last argument, so the target never opens a path the input
// names. Run with -close_fd_mask=3: the parser prints help and errors.
//
// Must hold: no crash, no out-of-bounds access, no exception; a usage error
// or failure is a return value (the message was printed); "run" means the
// options are usable: a source or a listen address, every source with a port
// and given once, sizes and delays within their documented ranges.
#include "fuzz_support.hpp"
#include "options.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace {

// The memfd --sources reads, refilled for each input.
int sources_fd() {
    static const int fd = ::memfd_create("coio-fuzz-sources", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    return fd;
}

void fill_sources(std::string_view text) {
    const int fd = sources_fd();
    FUZZ_CHECK(::ftruncate(fd, 0) == 0);
    FUZZ_CHECK(::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> args{"coio-logcollect"};
    for (std::size_t start = 0; start <= input.size() && args.size() < 64;) {
        const std::size_t nul = input.find('\0', start);
        const std::size_t end = nul == std::string_view::npos ? input.size() : nul;
        args.emplace_back(input.substr(start, end - start));
        start = end + 1;
    }
    // Any --sources value names the memfd; it holds the last argument.
    fill_sources(args.back());
    const std::string memfd_path = "/proc/self/fd/" + std::to_string(sources_fd());
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--sources" && i + 1 < args.size()) {
            args[i + 1] = memfd_path;
        } else if (args[i].starts_with("--sources=")) {
            args[i] = "--sources=" + memfd_path;
        }
    }
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);

    logcollect::options o;
    logcollect::parse_result r = logcollect::parse_result::failure;
    try {
        r = logcollect::parse_options(static_cast<int>(args.size()), argv.data(), o);
    } catch (...) {
        FUZZ_CHECK(!"parse_options threw");
    }
    if (r != logcollect::parse_result::run) {
        return 0;
    }
    FUZZ_CHECK(!o.sources.empty() || o.listen.has_value());
    for (std::size_t i = 0; i < o.sources.size(); ++i) {
        FUZZ_CHECK(!o.sources[i].empty() && o.sources[i].port() != 0);
        FUZZ_CHECK(std::find(o.sources.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                             o.sources.end(), o.sources[i]) == o.sources.end());
    }
    FUZZ_CHECK(!o.listen || !o.listen->empty());
    FUZZ_CHECK(!o.output.empty());
    FUZZ_CHECK(o.chunk_size >= 1 && o.chunk_size <= (16U << 20U));
    FUZZ_CHECK(o.max_line >= 1 && o.max_line <= (1U << 30U));
    FUZZ_CHECK(o.backoff_min.count() >= 1 && o.backoff_min <= o.backoff_max);
    FUZZ_CHECK(o.stats_interval.count() >= 0);
    return 0;
}
