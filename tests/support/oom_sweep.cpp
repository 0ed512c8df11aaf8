// tests/support/oom_sweep.cpp - the allocation-failure sweep (see
// oom_sweep.hpp): the counting operator new, the child processes, the checks.
#include "support/oom_sweep.hpp"

#include "support/support.hpp"

#include <coio/coio.hpp>

#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <utility>

namespace {

// The counting allocator. Only the thread that armed it counts and fails;
// every thread's allocations count towards g_live.
std::atomic<long long> g_live{0};
thread_local bool t_armed = false;
thread_local long long t_count = 0;   // allocations since arming
thread_local long long t_fail_at = 0; // 0: never
// COIO_OOM_TRACE=1: print a backtrace at the failing allocation.
const bool g_trace = std::getenv("COIO_OOM_TRACE") != nullptr;

void* counted_alloc(std::size_t n, std::size_t align, bool nothrow) {
    if (t_armed && ++t_count == t_fail_at) {
        if (g_trace) {
            // Where it failed, in the child's stderr (the failure message
            // shows it): resolve with addr2line -e oom_test.
            void* frames[40];
            backtrace_symbols_fd(frames, backtrace(frames, 40), 2);
        }
        if (nothrow) {
            return nullptr;
        }
        throw std::bad_alloc();
    }
    if (n == 0) {
        n = 1;
    }
    void* p = nullptr;
    if (align <= alignof(std::max_align_t)) {
        p = std::malloc(n);
    } else if (::posix_memalign(&p, align, n) != 0) {
        p = nullptr;
    }
    if (p == nullptr) {
        if (nothrow) {
            return nullptr;
        }
        throw std::bad_alloc();
    }
    g_live.fetch_add(1, std::memory_order_relaxed);
    return p;
}

void counted_free(void* p) noexcept {
    if (p != nullptr) {
        g_live.fetch_sub(1, std::memory_order_relaxed);
        std::free(p);
    }
}

} // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n, 0, false);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n, 0, false);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return counted_alloc(n, 0, true);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return counted_alloc(n, 0, true);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a), false);
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a), false);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_alloc(n, static_cast<std::size_t>(a), true);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_alloc(n, static_cast<std::size_t>(a), true);
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    counted_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    counted_free(p);
}

namespace {

using coio::test::cycle_fn;

thread_local int t_reported_oom = 0; // std::bad_alloc (or ENOMEM) given to the handler
thread_local int t_reported_other = 0;

void on_exception(const coio::exception_context& c) {
    try {
        std::rethrow_exception(c.exception);
    } catch (const std::bad_alloc&) {
        ++t_reported_oom;
        return;
    } catch (const coio::net_error& e) {
        if (e.code() == std::errc::not_enough_memory) {
            ++t_reported_oom; // a read that found no memory for a buffer
        }
        // Otherwise a connection that failed because its other end did
        // (a TLS server reports a handshake the client gave up): expected.
        return;
    } catch (...) {
    }
    ++t_reported_other;
    std::fprintf(stderr, "exception handler: %.*s\n", static_cast<int>(c.message.size()),
                 c.message.data());
}

// What one cycle with a failure at allocation k did (the child's exit code).
enum outcome : int {
    completed = 0,       // the cycle ended normally
    bad_alloc_out = 1,   // run() ended with std::bad_alloc (or a read's ENOMEM)
    server_side = 2,     // the server's side of the connection failed and the
                         // exception handler got std::bad_alloc; the client's
                         // connection ended early, or had its ACK already
    other_exception = 3, // anything else: a defect
    leaked = 4,          // allocations or fds left after the thread ended
    not_recovered = 5,   // the unfailing cycle afterwards failed
    not_reached = 8,     // flag: the cycle made fewer than k allocations
};

// Runs a cycle on a thread of its own with a failure at allocation k (0:
// none); returns the outcome and the number of allocations it made.
int run_cycle(cycle_fn cycle, long long k, long long* count) {
    int result = completed;
    std::thread t([&]() noexcept {
        t_count = 0;
        t_fail_at = k;
        t_armed = true;
        t_reported_oom = 0;
        t_reported_other = 0;
        try {
            coio::event_loop loop;
            loop.set_exception_handler(on_exception);
            loop.run_until_complete(cycle());
        } catch (const std::bad_alloc&) {
            result = bad_alloc_out;
        } catch (const coio::exception_group& e) {
            // A task group's children failed: each with std::bad_alloc.
            result = bad_alloc_out;
            for (const std::exception_ptr& x : e.exceptions()) {
                try {
                    std::rethrow_exception(x);
                } catch (const std::bad_alloc&) {
                } catch (...) {
                    result = other_exception;
                }
            }
        } catch (const coio::net_error& e) {
            // An operation that needed memory the backend could not map.
            result = e.code() == std::errc::not_enough_memory ? bad_alloc_out : other_exception;
            if (result == other_exception) {
                std::fprintf(stderr, "allocation %lld: run() ended with: %s\n", k, e.what());
            }
        } catch (const coio::test::connection_lost&) {
            result = t_reported_oom > 0 ? server_side : other_exception;
            if (t_reported_oom == 0) {
                std::fprintf(stderr,
                             "allocation %lld: the connection was lost, and the "
                             "exception handler heard of no std::bad_alloc\n",
                             k);
            }
        } catch (const std::exception& e) {
            t_armed = false;
            std::fprintf(stderr, "allocation %lld: run() ended with: %s\n", k, e.what());
            result = other_exception;
        } catch (...) {
            t_armed = false;
            std::fprintf(stderr, "allocation %lld: run() ended with a non-std exception\n", k);
            result = other_exception;
        }
        t_armed = false;
        if (t_reported_other > 0) {
            result = other_exception;
        } else if (result == completed && t_reported_oom > 0) {
            result = server_side;
        }
        *count = t_count;
    });
    t.join();
    return result;
}

// The child's side of one k.
[[noreturn]] void child(cycle_fn cycle, long long k) {
    const long long live_before = g_live.load();
    const std::size_t fds_before = coio::test::open_fd_count();
    long long count = 0;
    int result = run_cycle(cycle, k, &count);
    const long long live_after = g_live.load();
    const std::size_t fds_after = coio::test::open_fd_count();
    if (result <= other_exception && (live_after != live_before || fds_after != fds_before)) {
        std::fprintf(stderr, "allocation %lld: %lld allocations and %zd fds left\n", k,
                     live_after - live_before,
                     static_cast<std::ptrdiff_t>(fds_after) -
                         static_cast<std::ptrdiff_t>(fds_before));
        result = leaked;
    }
    if (result <= other_exception) {
        long long again = 0;
        if (run_cycle(cycle, 0, &again) != completed) {
            result = not_recovered;
        }
    }
    if (count < k) {
        result |= not_reached;
    }
    std::fflush(stderr);
    ::_exit(result);
}

struct child_result {
    bool exited = false;
    int code = 0; // exit status, or the signal
    bool timed_out = false;
    std::string err; // its stderr
};

// Forks a child for allocation k; waits at most `bound_ms` for it.
child_result sweep_one(cycle_fn cycle, long long k, int bound_ms) {
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Everything the child says goes to the parent (Catch's own signal
        // handlers would print a failure report of their own to stdout).
        ::dup2(pipefd[1], 1);
        ::dup2(pipefd[1], 2);
        for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE}) {
            ::signal(sig, SIG_DFL);
        }
        child(cycle, k);
    }
    ::close(pipefd[1]);
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    REQUIRE(pidfd >= 0);
    child_result out;
    bool exited = false;
    bool eof = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
    while (!exited || !eof) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            out.timed_out = true;
            ::kill(pid, SIGKILL); // our own child, by PID
            break;
        }
        pollfd fds[2] = {{pidfd, POLLIN, 0}, {pipefd[0], POLLIN, 0}};
        if (::poll(fds, eof ? 1 : 2, static_cast<int>(left.count())) < 0 && errno != EINTR) {
            break;
        }
        exited = exited || (fds[0].revents & POLLIN) != 0;
        if (!eof && (fds[1].revents & (POLLIN | POLLHUP)) != 0) {
            char buf[4096];
            const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
            if (n > 0) {
                out.err.append(buf, static_cast<std::size_t>(n));
            } else {
                eof = true;
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(pidfd);
    ::close(pipefd[0]);
    out.exited = WIFEXITED(status);
    out.code = out.exited ? WEXITSTATUS(status) : WTERMSIG(status);
    return out;
}

} // namespace

namespace coio::test {

coio::task<> client_exchange(coio::task<coio::stream_pair> connect, std::string answer) {
    bool lost = false;
    try {
        auto [r, w] = co_await std::move(connect);
        w.write("hello\n");
        co_await w.drain();
        lost = co_await coio::wait_for(r.readline(), std::chrono::seconds(20)) != answer;
        if (!lost) {
            w.close();
            co_await w.wait_closed();
            lost = !(co_await r.readline()).empty();
        }
        if (lost) {
            w.abort();
        }
    } catch (const coio::net_error& e) {
        if (e.code() == std::errc::not_enough_memory) {
            throw; // the client's own read found no memory for a buffer
        }
        lost = true; // reset by the server, or its side of a handshake failed
    }
    if (lost) {
        throw connection_lost{};
    }
}

// Fails each allocation of `cycle` in turn (oom_sweep.hpp).
void sweep_allocations(cycle_fn cycle) {
    // Warm-up in this process: one-time state (the backend probe, statics)
    // exists before the children fork, as it would in a running server.
    long long total = 0;
    REQUIRE(run_cycle(cycle, 0, &total) == completed);
    REQUIRE(run_cycle(cycle, 0, &total) == completed);
    REQUIRE(total > 20);
    INFO("allocations in one cycle: " << total);

    int completed_n = 0;
    int bad_alloc_n = 0;
    int server_n = 0;
    int documented_abort_n = 0;
    long long k = 1;
    // Allocation counts vary a little from run to run (how the bytes
    // arrive): the sweep goes on until a child no longer reaches k.
    for (; k <= total + 200; ++k) {
        const child_result c = sweep_one(cycle, k, 30000);
        INFO("allocation " << k << ": " << c.err);
        REQUIRE_FALSE(c.timed_out);
        if (!c.exited) {
            // Only coio's documented end for memory nobody can be told about.
            CHECK(c.code == SIGABRT);
            REQUIRE(c.err.find("coio: ") != std::string::npos);
            REQUIRE(c.err.find("out of memory") != std::string::npos);
            ++documented_abort_n;
            continue;
        }
        if ((c.code & not_reached) != 0) {
            // Past the cycle's last allocation: it ran without a failure,
            // and must have left nothing either.
            REQUIRE((c.code & ~not_reached) == completed);
            break;
        }
        REQUIRE(c.code <= server_side);
        (c.code == completed ? completed_n : c.code == bad_alloc_out ? bad_alloc_n : server_n) += 1;
    }
    CHECK(k > total / 2);
    CHECK(bad_alloc_n > 0);
    WARN("allocations swept: " << (k - 1) << "; std::bad_alloc out of run(): " << bad_alloc_n
                               << "; on the server's side, reported: " << server_n
                               << "; absorbed (the cycle completed): " << completed_n
                               << "; coio's out-of-memory abort: " << documented_abort_n);
}

} // namespace coio::test
