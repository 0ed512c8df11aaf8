// tests/net/pipe_test.cpp - pipes, FIFOs and terminals as streams
// (connect_read_pipe / connect_write_pipe) on the backend named by
// COIO_BACKEND; the [io_uring] case also runs the scenarios on an explicit
// io_uring loop with COIO_URING_RW_NOWAIT=1, which makes every pipe read and
// write take the -EAGAIN -> poll -> retry path that kernels before ~6.x take
// for O_NONBLOCK pipes. SIGPIPE keeps its default action (kill) throughout:
// a write to a pipe whose reader is gone must fail, not kill the test.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/net/pipe.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using coio::test::require_clean;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

struct raw_pipe {
    int rd = -1;
    int wr = -1;
};

raw_pipe make_pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    return {fds[0], fds[1]};
}

bool sigpipe_blocked() {
    sigset_t cur;
    sigemptyset(&cur);
    pthread_sigmask(SIG_BLOCK, nullptr, &cur);
    return sigismember(&cur, SIGPIPE) == 1;
}

bool sigpipe_pending() {
    sigset_t p;
    sigemptyset(&p);
    sigpending(&p);
    return sigismember(&p, SIGPIPE) == 1;
}

// A pattern whose every byte depends on its position.
std::string pattern(std::size_t n, std::size_t seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>((i * 131 + seed + (i >> 12)) & 0xff);
    }
    return s;
}

coio::task<> lines_then_eof() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd);
    coio::stream_writer w = coio::connect_write_pipe(p.wr);
    w.write("one\ntwo\n");
    w.write("three");
    co_await w.drain();
    w.close();
    std::string a = co_await r.readline();
    std::string b = co_await r.readline();
    std::string c = co_await r.readline();
    std::string d = co_await r.readline();
    CHECK(a == "one\n");
    CHECK(b == "two\n");
    CHECK(c == "three");
    CHECK(d.empty());
    CHECK(r.at_eof());
}

// The reader waits before anything is written: it parks on the empty pipe.
coio::task<std::string> read_line(coio::stream_reader r) {
    co_return co_await r.readline();
}

coio::task<> reader_waits_without_a_buffer() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd);
    coio::stream_writer w = coio::connect_write_pipe(p.wr);
    auto h = coio::create_task(read_line(r));
    for (int i = 0; i < 5; ++i) {
        co_await coio::yield_now();
    }
    CHECK_FALSE(h.done());
    CHECK(coio::event_loop::running().stats().buffers_out == 0);
    w.write("late\n");
    std::string got = co_await h;
    CHECK(got == "late\n");
    w.close();
}

coio::task<> bulk_writer(coio::stream_writer w, std::string data) {
    std::size_t off = 0;
    while (off < data.size()) {
        const std::size_t n = std::min<std::size_t>(10'000, data.size() - off);
        w.write(std::string_view(data).substr(off, n));
        co_await w.drain();
        off += n;
    }
    w.close();
    co_await w.wait_closed();
}

// 4 MiB through a 64 KiB pipe: the writer waits for room, the reader for data.
coio::task<> bulk_with_backpressure() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd);
    coio::stream_writer w = coio::connect_write_pipe(p.wr);
    const std::string data = pattern(4 << 20);
    auto writer = coio::create_task(bulk_writer(std::move(w), data));
    std::string got;
    for (;;) {
        std::string chunk = co_await r.read(30'000);
        if (chunk.empty()) {
            break;
        }
        CHECK(r.buffered() <= r.limit() + 64 * 1024);
        got += chunk;
    }
    co_await writer;
    CHECK(got.size() == data.size());
    CHECK(got == data);
}

// The writer fills the pipe and its flush waits for room (several loop
// iterations), then the reader empties it: the waiting write must resume.
coio::task<> writer_waits_for_room() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd);
    coio::stream_writer w = coio::connect_write_pipe(p.wr);
    const std::string data = pattern(300'000, 7);
    w.write(data); // the pipe takes 64 KiB now; the flush waits with the rest
    for (int i = 0; i < 10; ++i) {
        co_await coio::yield_now();
    }
    CHECK(w.write_buffer_size() > 0);
    w.close();
    std::string got = co_await r.read();
    CHECK(got.size() == data.size());
    CHECK(got == data);
}

// The reader waits on an empty pipe for several iterations, then data comes.
coio::task<> reader_waits_for_data() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd);
    auto h = coio::create_task(read_line(r));
    for (int i = 0; i < 10; ++i) {
        co_await coio::yield_now();
    }
    REQUIRE(::write(p.wr, "raw\n", 4) == 4);
    std::string got = co_await h;
    CHECK(got == "raw\n");
    ::close(p.wr);
}

coio::task<> write_to_closed_reader() {
    {
        raw_pipe p = make_pipe();
        ::close(p.rd);
        coio::stream_writer w = coio::connect_write_pipe(p.wr);
        CHECK(sigpipe_blocked());
        w.write("nobody reads this\n"); // the first write fails at once (EPIPE)
        bool threw = false;
        try {
            co_await w.drain();
        } catch (const coio::net_error& e) {
            threw = true;
            CHECK(e.code() == std::errc::broken_pipe);
            CHECK(std::string(e.what()).find("pipe (fd " + std::to_string(p.wr) + ")") !=
                  std::string::npos);
        }
        CHECK(threw);
    }
    {
        // The reader goes away while the background flush waits for room.
        raw_pipe p = make_pipe();
        coio::stream_writer w = coio::connect_write_pipe(p.wr);
        w.write(pattern(1 << 20)); // more than the pipe holds: the flush waits
        co_await coio::yield_now();
        ::close(p.rd);
        bool threw = false;
        try {
            co_await w.drain();
        } catch (const coio::net_error& e) {
            threw = true;
            CHECK(e.code() == std::errc::broken_pipe);
        }
        CHECK(threw);
    }
    // The last pipe writer is gone: SIGPIPE is unblocked, nothing pending.
    CHECK_FALSE(sigpipe_blocked());
    CHECK_FALSE(sigpipe_pending());
}

coio::task<> cancel_a_waiting_read() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd);
    coio::stream_writer w = coio::connect_write_pipe(p.wr);
    auto h = coio::create_task(read_line(r));
    co_await coio::yield_now();
    h.cancel();
    bool cancelled = false;
    try {
        (void)co_await h;
    } catch (const coio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    w.write("after the cancel\n");
    std::string got = co_await r.readline();
    CHECK(got == "after the cancel\n");
    w.close();
}

coio::task<> read_timeout_on_a_pipe() {
    raw_pipe p = make_pipe();
    coio::stream_reader r = coio::connect_read_pipe(p.rd, {.read_timeout = 50ms});
    coio::stream_writer w = coio::connect_write_pipe(p.wr);
    bool timed_out = false;
    try {
        (void)co_await r.readline();
    } catch (const coio::net_error& e) {
        timed_out = e.code() == std::errc::timed_out;
    }
    CHECK(timed_out);
    w.close();
}

coio::task<> all_pipe_scenarios() {
    co_await lines_then_eof();
    co_await reader_waits_without_a_buffer();
    co_await bulk_with_backpressure();
    co_await writer_waits_for_room();
    co_await reader_waits_for_data();
    co_await write_to_closed_reader();
    co_await cancel_a_waiting_read();
    co_await read_timeout_on_a_pipe();
}

struct default_sigpipe {
    default_sigpipe() { std::signal(SIGPIPE, SIG_DFL); }
};

} // namespace

TEST_CASE("a pipe carries lines from a writer to a reader, then EOF", "[net][pipe]") {
    default_sigpipe d;
    run_clean(lines_then_eof());
}

TEST_CASE("a reader waiting on an empty pipe holds no pool buffer", "[net][pipe]") {
    run_clean(reader_waits_without_a_buffer());
}

TEST_CASE("4 MiB through a pipe with backpressure arrive intact", "[net][pipe]") {
    run_clean(bulk_with_backpressure());
}

TEST_CASE("a pipe writer waiting for room resumes when the reader empties the pipe",
          "[net][pipe]") {
    run_clean(writer_waits_for_room());
}

TEST_CASE("a pipe reader waiting for data resumes when it comes", "[net][pipe]") {
    run_clean(reader_waits_for_data());
}

TEST_CASE("writing to a pipe whose reader is gone fails with EPIPE and does not kill the "
          "process",
          "[net][pipe]") {
    default_sigpipe d;
    run_clean(write_to_closed_reader());
}

TEST_CASE("a cancelled pipe read loses nothing and the reader goes on", "[net][pipe]") {
    run_clean(cancel_a_waiting_read());
}

TEST_CASE("a read_timeout ends a pipe read with timed_out", "[net][pipe]") {
    run_clean(read_timeout_on_a_pipe());
}

namespace {

coio::task<> fifo_round_trip(std::string path) {
    const int rd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rd >= 0);
    const int wr = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(wr >= 0);
    coio::stream_reader r = coio::connect_read_pipe(rd);
    coio::stream_writer w = coio::connect_write_pipe(wr);
    w.write("through the fifo\n");
    w.write_eof(); // a pipe's write_eof closes it
    std::string line = co_await r.readline();
    std::string end = co_await r.read();
    CHECK(line == "through the fifo\n");
    CHECK(end.empty());
}

coio::task<> pty_round_trip() {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    const char* name = ::ptsname(master);
    REQUIRE(name != nullptr);
    const int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave >= 0);
    coio::stream_reader r = coio::connect_read_pipe(master);
    // The terminal echoes and translates; write to the slave, read the master.
    coio::stream_writer w = coio::connect_write_pipe(slave);
    auto reading = coio::create_task(read_line(r));
    co_await coio::yield_now();
    w.write("hello tty\n");
    std::string got = co_await reading;
    CHECK(got.find("hello tty") != std::string::npos);
    w.close();
}

} // namespace

TEST_CASE("a FIFO reads and writes like a pipe", "[net][pipe]") {
    char dir[] = "/tmp/coio-fifo-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/fifo";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    run_clean(fifo_round_trip(path));
    ::unlink(path.c_str());
    ::rmdir(dir);
}

TEST_CASE("a pseudo-terminal's master reads what its slave side writes", "[net][pipe]") {
    run_clean(pty_round_trip());
}

namespace {
coio::task<> refuse_regular_file(int fd) {
    bool refused = false;
    try {
        coio::stream_reader r = coio::connect_read_pipe(fd);
    } catch (const std::invalid_argument& e) {
        refused = std::string(e.what()).find("fd " + std::to_string(fd)) != std::string::npos;
    }
    CHECK(refused);
    CHECK(::fcntl(fd, F_GETFD) >= 0); // not taken: still open
    co_return;
}
} // namespace

TEST_CASE("a regular file is refused and its fd left open", "[net][pipe]") {
    const int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    run_clean(refuse_regular_file(fd));
    ::close(fd);
}

TEST_CASE("an io_uring loop takes the -EAGAIN path of pipes when the kernel returns it",
          "[net][pipe][io_uring]") {
    auto b = coio::available_backends();
    if (std::find(b.begin(), b.end(), "io_uring") == b.end()) {
        WARN("io_uring is not available here");
        return;
    }
    default_sigpipe d;
    for (const char* nowait : {"1", "0"}) {
        INFO("COIO_URING_RW_NOWAIT=" << nowait);
        ::setenv("COIO_URING_RW_NOWAIT", nowait, 1);
        const std::size_t fds_before = coio::test::open_fd_count();
        {
            coio::event_loop l("io_uring");
            l.run_until_complete(all_pipe_scenarios());
            require_clean(l);
        }
        CHECK(coio::test::open_fd_count() == fds_before);
    }
    ::unsetenv("COIO_URING_RW_NOWAIT");
}
