// tests/support/support.cpp
#include "support/support.hpp"

#include <dirent.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string_view>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define COIO_TEST_HAVE_VALGRIND_H 1
#endif

namespace coio::test {

namespace {

std::string link_target(const std::string& path) {
    char target[PATH_MAX];
    const ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
    return n < 0 ? std::string("?") : std::string(target, static_cast<std::size_t>(n));
}

// ThreadSanitizer's runtime symbolizes a report to match it against
// scripts/tsan.supp, from its own thread and at its own time: it opens the
// executable, the shared libraries and /proc/<pid>/maps to read debug info and
// the module list, so such fds come and go between two counts. coio creates
// only sockets, pipes and anonymous inodes (epoll, eventfd, signalfd,
// io_uring), never a file on a path, so under TSan the count leaves paths out.
#if defined(__SANITIZE_THREAD__)
constexpr bool skip_paths = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool skip_paths = true;
#else
constexpr bool skip_paths = false;
#endif
#else
constexpr bool skip_paths = false;
#endif

// Calls f(fd, target) for each fd in /proc/self/fd except the directory's own
// (and, under TSan, those on a path).
template <class F>
void for_each_fd(F f) {
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) {
        return;
    }
    const int own = ::dirfd(d);
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        const int fd = std::atoi(e->d_name);
        if (fd == own) {
            continue;
        }
        const std::string target = link_target(std::string("/proc/self/fd/") + e->d_name);
        if (!skip_paths || target.empty() || target.front() != '/') {
            f(fd, target);
        }
    }
    ::closedir(d);
}

} // namespace

std::size_t open_fd_count() {
    std::size_t n = 0;
    for_each_fd([&n](int, const std::string&) { ++n; });
    return n;
}

std::string open_fd_list() {
    std::string out;
    for_each_fd([&out](int fd, const std::string& target) {
        out += std::to_string(fd) + " -> " + target + "\n";
    });
    return out;
}

bool under_valgrind() {
    const char* env = std::getenv("COIO_TEST_VALGRIND");
    if (env != nullptr && *env != '\0' && std::string_view(env) != "0") {
        return true;
    }
#if defined(COIO_TEST_HAVE_VALGRIND_H)
    return RUNNING_ON_VALGRIND != 0;
#else
    return false;
#endif
}

} // namespace coio::test
