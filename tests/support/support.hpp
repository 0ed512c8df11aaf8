// tests/support/support.hpp - helpers shared by the tests.
#pragma once

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>

#if defined(__SANITIZE_ADDRESS__)
#define COIO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COIO_TEST_ASAN 1
#endif
#endif

namespace coio::test {

// Built with AddressSanitizer: RSS then includes its redzones, quarantine and
// shadow memory, so a test's RSS bound is checked only in the other builds.
#ifdef COIO_TEST_ASAN
inline constexpr bool asan_build = true;
#else
inline constexpr bool asan_build = false;
#endif

// Counts live instances (cppcoro's counted.hpp): constructions, copies, moves
// and destructions, to check that frames are destroyed.
struct counted {
    static inline int alive = 0;
    static inline int constructed = 0;
    counted() noexcept { ++alive, ++constructed; }
    counted(const counted&) noexcept { ++alive, ++constructed; }
    counted(counted&&) noexcept { ++alive, ++constructed; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() { --alive; }
    static void reset() noexcept { alive = constructed = 0; }
};

// Open fds in this process (/proc/self/fd), to check nothing leaks.
std::size_t open_fd_count();

// The same fds, one "fd -> target" line each, for a failure message.
std::string open_fd_list();

// True under valgrind: scripts/test's valgrind pass sets COIO_TEST_VALGRIND=1,
// and RUNNING_ON_VALGRIND (when valgrind's header is installed) catches a run
// by hand. valgrind keeps fds of its own at the top of the range and does not
// let a test set RLIMIT_NOFILE as it means to (RELIABILITY A.2).
bool under_valgrind();

// Ends the current test with a warning under valgrind, for the tests that
// lower RLIMIT_NOFILE (Catch2 2.13 has no SKIP()).
#define COIO_SKIP_UNDER_VALGRIND()                                                                 \
    do {                                                                                           \
        if (::coio::test::under_valgrind()) {                                                      \
            WARN("skipped under valgrind: it does not let a test lower RLIMIT_NOFILE");            \
            return;                                                                                \
        }                                                                                          \
    } while (false)

// The loop is clean: no task, frame, ready handle, timer, I/O or registration.
inline void require_clean(const coio::event_loop& loop) {
    coio::loop_stats s = loop.stats();
    CHECK(s.tasks == 0);
    CHECK(s.task_frames == 0);
    CHECK(s.ready == 0);
    CHECK(s.timers == 0);
    CHECK(s.io_in_flight == 0);
    CHECK(s.registrations == 0);
    CHECK(s.buffers_out == 0);
}

// Run `t` on a fresh loop (the backend from COIO_BACKEND), check the loop is
// clean afterwards and that no fd leaked; return t's value.
template <class T>
T run_clean(coio::task<T> t) {
    const std::string fds_before = open_fd_list();
    coio::result<T> out;
    {
        coio::event_loop loop;
        try {
            if constexpr (std::is_void_v<T>) {
                loop.run_until_complete(std::move(t));
                out.set_value();
            } else {
                out.set_value(loop.run_until_complete(std::move(t)));
            }
        } catch (...) {
            out.set_exception(std::current_exception());
        }
        require_clean(loop);
    }
    CHECK(open_fd_list() == fds_before);
    return std::move(out).value();
}

} // namespace coio::test
