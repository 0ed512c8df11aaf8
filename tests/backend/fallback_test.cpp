// tests/backend/fallback_test.cpp - syscalls a sandbox or an old kernel
// refuses, simulated with a seccomp filter:
// - io_uring forbidden (as in Docker's and many CI sandboxes' default
//   profiles) must make the default loop fall back to epoll, and an explicit
//   COIO_BACKEND=io_uring must fail with an error that says why;
// - epoll_pwait2 missing (ENOSYS: Linux before 5.11, valgrind 3.19) must make
//   the epoll backend wait with epoll_wait instead.
//
// The parent forks; the child installs the filter and re-executes this binary
// to run a hidden "[.seccomp_child]" test case. The re-exec matters: this
// process has already probed io_uring (the test main does, for COIO_BACKEND),
// and the probe's answer is cached for the life of the process. The child
// reports through its exit status.
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <seccomp.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/io_uring.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>

namespace {

constexpr const char* child_marker = "COIO_SECCOMP_CHILD";

coio::task<std::string> echo_round_trip() {
    coio::server srv = co_await coio::start_server(
        [](coio::socket s) -> coio::task<> {
            std::array<char, 64> buf{};
            for (;;) {
                coio::io_result r = co_await s.read_some(std::span(buf));
                if (!r) {
                    co_return;
                }
                if (!(co_await s.write_all(std::string_view(buf.data(), r.bytes))).ok()) {
                    co_return;
                }
            }
        },
        "127.0.0.1", 0);
    coio::socket c = coio::socket::open_tcp(coio::address::family::ipv4);
    // (co_await outside the assertion macros: see tests/backend/uring_test.cpp)
    coio::io_result connected = co_await c.connect(coio::address::loopback_v4(srv.port()));
    REQUIRE(connected.ok());
    coio::io_result sent = co_await c.write_all("hello over epoll");
    REQUIRE(sent.ok());
    std::string got;
    std::array<char, 64> buf{};
    while (got.size() < 16) {
        coio::io_result r = co_await c.read_some(std::span(buf));
        REQUIRE(r.ok());
        got.append(buf.data(), r.bytes);
    }
    c.close();
    srv.close();
    co_await srv.wait_closed();
    co_return got;
}

// Installs a filter under which syscall `nr` fails with `err`, everything
// else is allowed. libseccomp sets no_new_privs, so the filter survives the
// execv.
bool refuse_syscall(int nr, int err) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) {
        return false;
    }
    bool ok = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), nr, 0) == 0 &&
              seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    return ok;
}

// Forks a child that refuses syscall `nr` with `err` and re-executes this
// binary to run the hidden test case tagged `child_tag`, with COIO_BACKEND
// set to `backend` (unset if null); checks that the child passed.
void run_child(int nr, int err, const char* child_tag, const char* backend) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (!refuse_syscall(nr, err)) {
            ::_exit(100);
        }
        if (backend != nullptr) {
            ::setenv("COIO_BACKEND", backend, 1);
        } else {
            ::unsetenv("COIO_BACKEND");
        }
        ::setenv(child_marker, "1", 1);
        // -w NoTests: a child that ran no test (a renamed tag) must not pass.
        ::execl("/proc/self/exe", "fallback_test", child_tag, "-w", "NoTests",
                static_cast<char*>(nullptr));
        ::_exit(101);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    INFO("child exit status " << WEXITSTATUS(status)
                              << " (100: no seccomp filter, 101: exec failed, else: failed "
                                 "assertions; see the child's output above)");
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("with io_uring_setup forbidden by seccomp, the default loop falls back to epoll",
          "[backend]") {
    run_child(__NR_io_uring_setup, EPERM, "[.seccomp_child]", nullptr);
}

TEST_CASE("seccomp child: io_uring is refused, epoll serves", "[.seccomp_child]") {
    REQUIRE(std::getenv(child_marker) != nullptr); // run by the test above only
    REQUIRE(std::getenv("COIO_BACKEND") == nullptr);

    // The filter is in place: the raw syscall fails with EPERM.
    io_uring_params params{};
    errno = 0;
    CHECK(::syscall(__NR_io_uring_setup, 4, &params) == -1);
    CHECK(errno == EPERM);

    auto usable = coio::available_backends();
    CHECK(std::find(usable.begin(), usable.end(), "io_uring") == usable.end());
    CHECK(std::find(usable.begin(), usable.end(), "epoll") != usable.end());
    CHECK(coio::backend_name() == "epoll");

    {
        coio::event_loop loop;
        CHECK(loop.backend_name() == "epoll");
        CHECK(loop.run_until_complete(echo_round_trip()) == "hello over epoll");
        coio::test::require_clean(loop);
    }
    CHECK(coio::run(echo_round_trip()) == "hello over epoll");

    // Asking for io_uring explicitly is an error that names it and says why.
    ::setenv("COIO_BACKEND", "io_uring", 1);
    try {
        coio::event_loop loop;
        FAIL("COIO_BACKEND=io_uring built a loop on " << loop.backend_name());
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.find("io_uring") != std::string::npos);
        // Why: the probe's EPERM, or a coio built without liburing.
        CHECK((what.find("Operation not permitted") != std::string::npos ||
               what.find("not built") != std::string::npos));
    }
    ::unsetenv("COIO_BACKEND");
}

// Regression (epoll): every timed wait threw "epoll_wait: Function not
// implemented" where epoll_pwait2 is missing (Linux before 5.11, and valgrind
// 3.19, which made the valgrind pass fail on epoll).
TEST_CASE("with epoll_pwait2 missing, the epoll loop still waits for timers and sockets",
          "[backend]") {
    run_child(__NR_epoll_pwait2, ENOSYS, "[.pwait2_child]", "epoll");
}

coio::task<std::chrono::nanoseconds> timed_sleeps() {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) {
        co_await coio::sleep(std::chrono::microseconds(300)); // rounded up to 1 ms
    }
    co_return std::chrono::steady_clock::now() - start;
}

TEST_CASE("seccomp child: epoll_pwait2 is refused, epoll_wait waits", "[.pwait2_child]") {
    REQUIRE(std::getenv(child_marker) != nullptr); // run by the test above only
    errno = 0;
    CHECK(::syscall(__NR_epoll_pwait2, -1, nullptr, 0, nullptr, nullptr, 0) == -1);
    CHECK(errno == ENOSYS);

    coio::event_loop loop;
    REQUIRE(loop.backend_name() == "epoll");
    const std::chrono::nanoseconds slept = loop.run_until_complete(timed_sleeps());
    CHECK(slept >= std::chrono::microseconds(1500));
    CHECK(loop.run_until_complete(echo_round_trip()) == "hello over epoll");
    coio::test::require_clean(loop);
}

} // namespace
