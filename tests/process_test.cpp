// tests/process_test.cpp - create_subprocess_exec and coio::process with real
// programs (cat, sh, sleep, true, python3), on the backend named by
// COIO_BACKEND; the exit watch's polling fallback (no pidfd) runs with
// COIO_EXIT_WATCH=poll. SIGPIPE keeps its default action: a write to a child
// that exited without reading must fail, not kill the test.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/process.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using coio::test::require_clean;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

constexpr coio::redirect piped = coio::redirect::pipe;

struct default_sigpipe {
    default_sigpipe() { std::signal(SIGPIPE, SIG_DFL); }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>((i * 131 + (i >> 12)) & 0xff);
    }
    return s;
}

bool proc_exists(long pid) {
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

// Waits (bounded) until /proc/<pid> is gone: the child was reaped.
coio::task<bool> reaped_within(long pid, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (proc_exists(pid)) {
        if (std::chrono::steady_clock::now() > end) {
            co_return false;
        }
        co_await coio::sleep(5ms);
    }
    co_return true;
}

coio::task<> cat_round_trip() {
    coio::process p = coio::create_subprocess_exec("cat", {}, {.in = piped, .out = piped});
    CHECK(p.pid() > 0);
    coio::stream_writer& in = p.stdin_writer();
    coio::stream_reader& out = p.stdout_reader();
    for (int i = 0; i < 100; ++i) {
        const std::string line = "line " + std::to_string(i) + "\n";
        in.write(line);
        co_await in.drain();
        std::string got = co_await out.readline();
        CHECK(got == line);
    }
    in.close();
    std::string rest = co_await out.read();
    CHECK(rest.empty());
    CHECK(out.at_eof());
    coio::exit_status st = co_await p.wait();
    CHECK(st.success());
    CHECK(p.status() == st);
}

coio::task<coio::exit_status> status_of(std::string command) {
    coio::process p = coio::create_subprocess_shell(std::move(command));
    co_return co_await p.wait();
}

coio::task<> exit_codes_and_signals() {
    coio::exit_status three = co_await status_of("exit 3");
    CHECK(three.code == 3);
    CHECK(three.exited());
    CHECK_FALSE(three.success());
    CHECK(three.returncode() == 3);
    CHECK(three.to_string() == "exit code 3");
    coio::exit_status usr1 = co_await status_of("kill -USR1 $$");
    CHECK(usr1.signal == SIGUSR1);
    CHECK(usr1.returncode() == -SIGUSR1);
    CHECK(usr1.to_string().find("killed by signal " + std::to_string(SIGUSR1)) == 0);

    coio::process sleeper = coio::create_subprocess_exec("sleep", {"30"});
    sleeper.kill();
    coio::exit_status killed = co_await sleeper.wait();
    CHECK(killed.signal == SIGKILL);
    sleeper.kill(); // reaped: nothing is sent, nothing thrown

    coio::process other = coio::create_subprocess_exec("sleep", {"30"});
    other.terminate();
    coio::exit_status terminated = co_await other.wait();
    CHECK(terminated.signal == SIGTERM);
}

coio::task<> missing_programs() {
    for (const char* prog : {"/nonexistent/coio-no-such-program", "coio-no-such-program"}) {
        bool threw = false;
        try {
            coio::process p =
                coio::create_subprocess_exec(prog, {"x"}, {.in = piped, .out = piped});
        } catch (const std::system_error& e) {
            threw = true;
            CHECK(e.code() == std::errc::no_such_file_or_directory);
            CHECK(std::string(e.what()).find(std::string("'") + prog + "'") != std::string::npos);
        }
        CHECK(threw);
    }
    // A file without execute permission (even root needs one x bit).
    char path[] = "/tmp/coio-noexec-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    ::chmod(path, 0644);
    bool denied = false;
    try {
        coio::process p = coio::create_subprocess_exec(path);
    } catch (const std::system_error& e) {
        denied = e.code() == std::errc::permission_denied;
    }
    ::unlink(path);
    CHECK(denied);
    co_return;
}

coio::task<> communicate_both_ways(std::size_t size) {
    const std::string input = pattern(size);
    coio::process p = coio::create_subprocess_shell("cat; echo done >&2",
                                                    {.in = piped, .out = piped, .err = piped});
    coio::communicate_result r = co_await p.communicate(input);
    CHECK(r.out.size() == input.size());
    CHECK(r.out == input);
    CHECK(r.err == "done\n");
    CHECK(p.status() == coio::exit_status{});
}

// 64 MiB of 8-byte little-endian counters from python3, read in pieces:
// every word is checked, and the peak RSS may not grow by more than 16 MiB.
const char* counter_script =
    "import struct, sys\n"
    "out = sys.stdout.buffer\n"
    "n = 8 * 1024 * 1024\n"
    "step = 8192\n"
    "for base in range(0, n, step):\n"
    "    out.write(struct.pack('<%dQ' % step, *range(base, base + step)))\n";

long vm_kib(const char* field) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind(field, 0) == 0) {
            return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
        }
    }
    return -1;
}

coio::task<> stream_64_mib() {
    {
        std::ofstream clear("/proc/self/clear_refs");
        clear << "5"; // reset VmHWM to the current RSS
    }
    const long rss_before = vm_kib("VmRSS:");
    coio::process p =
        coio::create_subprocess_exec("python3", {"-c", counter_script}, {.out = piped});
    coio::stream_reader& out = p.stdout_reader();
    std::uint64_t next = 0;
    std::string carry;
    std::size_t total = 0;
    bool ordered = true;
    for (;;) {
        std::string chunk = co_await out.read(64 * 1024);
        if (chunk.empty()) {
            break;
        }
        total += chunk.size();
        carry += chunk;
        std::size_t off = 0;
        for (; off + 8 <= carry.size(); off += 8) {
            std::uint64_t v = 0;
            std::memcpy(&v, carry.data() + off, 8);
            if (v != next) {
                ordered = false;
            }
            ++next;
        }
        carry.erase(0, off);
    }
    coio::exit_status st = co_await p.wait();
    CHECK(st.success());
    CHECK(ordered);
    CHECK(carry.empty());
    CHECK(total == 64u * 1024 * 1024);
    CHECK(next == 8u * 1024 * 1024);
    const long hwm = vm_kib("VmHWM:");
    INFO("RSS before " << rss_before << " KiB, peak " << hwm << " KiB");
    if (!coio::test::asan_build) {
        CHECK(hwm - rss_before < 16 * 1024);
    }
}

coio::task<> child_that_does_not_read() {
    {
        coio::process p = coio::create_subprocess_exec("true", {}, {.in = piped});
        coio::exit_status st = co_await p.wait();
        CHECK(st.success());
        coio::stream_writer& in = p.stdin_writer();
        in.write(pattern(1 << 20));
        bool broken = false;
        try {
            co_await in.drain();
        } catch (const coio::net_error& e) {
            broken = e.code() == std::errc::broken_pipe;
        }
        CHECK(broken);
    }
    {
        // communicate ignores EPIPE, as asyncio does.
        coio::process p = coio::create_subprocess_exec("true", {}, {.in = piped, .out = piped});
        coio::communicate_result r = co_await p.communicate(pattern(4 << 20));
        CHECK(r.out.empty());
        CHECK(p.status() == coio::exit_status{});
    }
}

// Our fds that a child may inherit: 0-2 and any without FD_CLOEXEC.
std::set<std::string> inheritable_fds() {
    std::set<std::string> out{"0", "1", "2"};
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    const int own = ::dirfd(d);
    while (const dirent* e = ::readdir(d)) {
        const int fd = std::atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != own && fd > 2 &&
            (::fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0) {
            out.insert(e->d_name);
        }
    }
    ::closedir(d);
    return out;
}

// The shell's fds are listed by ls, a child of the shell, once the shell
// runs (after exec: a look at /proc/<pid>/fd from here right after the spawn
// can still see the close-on-exec fds, which exec closes after waking the
// parent; and a shell globbing its own fd directory would see the directory's
// fd). `; exit 0` keeps sh from exec'ing ls in its place.
coio::task<> child_gets_no_coio_fds() {
    // Some fds of coio's besides the loop's own: a listener and a pipe stream.
    coio::socket listener = coio::socket::open_tcp(coio::address::family::ipv4);
    listener.bind(coio::address::loopback_v4(0));
    listener.listen();
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    coio::stream_reader r = coio::connect_read_pipe(fds[0]);
    coio::stream_writer w = coio::connect_write_pipe(fds[1]);
    const std::set<std::string> expected = inheritable_fds();
    coio::process p = coio::create_subprocess_shell("ls /proc/$$/fd; exit 0",
                                                    {.in = piped, .out = piped, .err = piped});
    std::set<std::string> got;
    for (;;) {
        std::string l = co_await p.stdout_reader().readline();
        if (l.empty()) {
            break;
        }
        l.pop_back();
        got.insert(l);
    }
    CHECK(got == expected);
    coio::exit_status st = co_await p.wait();
    CHECK(st.success());
    w.close();
}

coio::task<> env_and_cwd() {
    coio::process_options o{.out = piped};
    o.env = std::map<std::string, std::string>{{"FOO", "bar baz"}, {"PATH", "/usr/bin:/bin"}};
    o.cwd = "/tmp";
    coio::process p =
        coio::create_subprocess_shell("echo \"$FOO\"; pwd; echo \"${HOME-unset}\"", o);
    std::string out = co_await p.stdout_reader().read();
    CHECK(out == "bar baz\n/tmp\nunset\n");
    coio::exit_status st = co_await p.wait();
    CHECK(st.success());
}

coio::task<> redirects() {
    coio::process merged = coio::create_subprocess_shell(
        "echo out; echo err >&2", {.out = piped, .err = coio::redirect::to_stdout});
    std::string both = co_await merged.stdout_reader().read();
    CHECK(both == "out\nerr\n");
    (void)co_await merged.wait();

    coio::process quiet = coio::create_subprocess_exec(
        "cat", {}, {.in = coio::redirect::devnull, .out = piped, .err = coio::redirect::devnull});
    std::string nothing = co_await quiet.stdout_reader().read();
    CHECK(nothing.empty());
    coio::exit_status st = co_await quiet.wait();
    CHECK(st.success());

    bool refused = false;
    try {
        coio::process bad =
            coio::create_subprocess_exec("cat", {}, {.out = coio::redirect::to_stdout});
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    CHECK(refused);
    coio::process no_pipes = coio::create_subprocess_exec("true");
    bool logic = false;
    try {
        (void)no_pipes.stdout_reader();
    } catch (const std::logic_error& e) {
        logic = std::string(e.what()).find("'true'") != std::string::npos;
    }
    CHECK(logic);
    (void)co_await no_pipes.wait();
}

coio::task<> dropped_process_is_reaped() {
    long pid = 0;
    {
        coio::process p = coio::create_subprocess_exec("sleep", {"0.2"}, {.out = piped});
        pid = p.pid();
    }
    CHECK(proc_exists(pid)); // still running, the pipe closed
    bool gone = co_await reaped_within(pid, 10s);
    CHECK(gone);
}

coio::task<> several_waiters_and_a_timeout() {
    coio::process p = coio::create_subprocess_exec("sleep", {"30"});
    bool timed_out = false;
    try {
        (void)co_await coio::wait_for(p.wait(), 50ms);
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK_FALSE(p.status().has_value());
    auto a = coio::create_task(p.wait());
    auto b = coio::create_task(p.wait());
    co_await coio::yield_now();
    p.kill();
    coio::exit_status sa = co_await a;
    coio::exit_status sb = co_await b;
    CHECK(sa.signal == SIGKILL);
    CHECK(sa == sb);
}

coio::task<> lines_as_they_come() {
    coio::process p = coio::create_subprocess_shell(
        "for i in 1 2 3; do echo \"tick $i\"; sleep 0.05; done", {.out = piped});
    std::vector<std::string> lines;
    for (;;) {
        std::string l = co_await p.stdout_reader().readline();
        if (l.empty()) {
            break;
        }
        lines.push_back(l);
    }
    CHECK(lines == std::vector<std::string>{"tick 1\n", "tick 2\n", "tick 3\n"});
    (void)co_await p.wait();
}

coio::task<> all_process_scenarios() {
    co_await cat_round_trip();
    co_await exit_codes_and_signals();
    co_await communicate_both_ways(1 << 20);
    co_await child_that_does_not_read();
    co_await dropped_process_is_reaped();
    co_await several_waiters_and_a_timeout();
}

} // namespace

TEST_CASE("cat echoes lines back and ends when its stdin closes", "[process]") {
    run_clean(cat_round_trip());
}

TEST_CASE("wait() returns exit codes and the signals that ended a child", "[process]") {
    run_clean(exit_codes_and_signals());
}

TEST_CASE("a program that cannot be run throws system_error naming it", "[process]") {
    run_clean(missing_programs());
}

TEST_CASE("communicate moves 16 MiB in and out at once without deadlock", "[process]") {
    run_clean(communicate_both_ways(16 << 20));
}

TEST_CASE("64 MiB from a child's stdout arrive in order with bounded memory", "[process]") {
    run_clean(stream_64_mib());
}

TEST_CASE("writing to a child that exited without reading fails with EPIPE, no SIGPIPE death",
          "[process]") {
    default_sigpipe d;
    run_clean(child_that_does_not_read());
}

TEST_CASE("a child gets no fd of coio's", "[process]") {
    run_clean(child_gets_no_coio_fds());
}

TEST_CASE("env and cwd reach the child", "[process]") {
    run_clean(env_and_cwd());
}

TEST_CASE("stderr to stdout, /dev/null, and misuse of redirects", "[process]") {
    run_clean(redirects());
}

TEST_CASE("a process dropped while its child runs is reaped in the background", "[process]") {
    run_clean(dropped_process_is_reaped());
}

TEST_CASE("several tasks wait for one child; wait_for times a wait out", "[process]") {
    run_clean(several_waiters_and_a_timeout());
}

TEST_CASE("a child's output is read line by line as it comes", "[process]") {
    run_clean(lines_as_they_come());
}

TEST_CASE("without an exit watch the child is reaped by polling", "[process]") {
    ::setenv("COIO_EXIT_WATCH", "poll", 1);
    default_sigpipe d;
    run_clean(all_process_scenarios());
    ::unsetenv("COIO_EXIT_WATCH");
}

namespace {
coio::task<long> leave_a_sleeper() {
    coio::process p = coio::create_subprocess_exec("sleep", {"30"});
    co_return p.pid();
}
} // namespace

TEST_CASE("a child still running when its loop ends is reported and left running", "[process]") {
    std::vector<std::string> reports;
    long pid = 0;
    {
        coio::event_loop loop;
        loop.set_exception_handler(
            [&reports](const coio::exception_context& c) { reports.emplace_back(c.message); });
        pid = loop.run_until_complete(leave_a_sleeper());
        require_clean(loop);
    }
    REQUIRE(pid > 0);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].find("process " + std::to_string(pid) + " ('sleep')") == 0);
    CHECK(reports[0].find("still running") != std::string::npos);
    CHECK(proc_exists(pid));
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    int status = 0;
    CHECK(::waitpid(static_cast<pid_t>(pid), &status, 0) == pid);
}
