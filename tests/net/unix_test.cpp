// tests/net/unix_test.cpp - Unix-domain stream sockets: open_unix_connection
// and start_unix_server with streams and raw sockets, the socket file (stale
// file removed before bind, own file removed on close), paths too long or
// missing, the abstract namespace. Socket paths live in a fresh mkdtemp
// directory per test.
#include "net/net_support.hpp"

#include <coio/net/unix.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using coio::test::run_clean;

namespace {

// A directory of its own under $TMPDIR or /tmp, removed (with what is left in
// it) at the end of the test.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl =
            std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/coio-unix-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        REQUIRE(::mkdtemp(buf.data()) != nullptr);
        m_path = buf.data();
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        for (const char* name : {"s.sock", "other"}) {
            ::unlink((m_path + "/" + name).c_str());
        }
        ::rmdir(m_path.c_str());
    }
    [[nodiscard]] std::string file(const char* name) const { return m_path + "/" + name; }

private:
    std::string m_path;
};

bool is_socket_file(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// A file-path sockaddr_un for the plain-syscall sides of these tests.
sockaddr_un unix_sockaddr(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    return sa;
}

// A non-blocking client connected with plain connect (it waits in the
// listener's backlog until accepted).
coio::socket connected_client(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    coio::socket s(fd);
    const sockaddr_un sa = unix_sockaddr(path);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    return s;
}

coio::task<> line_echo(coio::stream_reader r, coio::stream_writer w) {
    for (;;) {
        std::string line = co_await r.readline();
        if (line.empty()) {
            break;
        }
        w.write(line);
        co_await w.drain();
    }
    w.close();
    co_await w.wait_closed();
}

// --- echo -----------------------------------------------------------------------------

coio::task<std::vector<std::string>> talk(std::string path, int id) {
    coio::stream_pair p = co_await coio::open_unix_connection(path);
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
        p.writer.write("client " + std::to_string(id) + " line " + std::to_string(i) + "\n");
        co_await p.writer.drain();
        std::string line = co_await p.reader.readline();
        got.push_back(line);
    }
    p.writer.write_eof();
    std::string last = co_await p.reader.readline();
    got.push_back(last.empty() ? "<eof>" : last);
    p.writer.close();
    co_await p.writer.wait_closed();
    co_return got;
}

coio::task<> stream_echo(std::string path) {
    coio::unix_server srv = co_await coio::start_unix_server(line_echo, path);
    CHECK(srv.path() == path);
    CHECK(srv.is_serving());
    CHECK(is_socket_file(path) == (path.front() != '\0'));

    std::vector<coio::task<std::vector<std::string>>> clients;
    for (int id = 0; id < 4; ++id) {
        clients.push_back(talk(path, id));
    }
    std::vector<std::vector<std::string>> all = co_await coio::gather(std::move(clients));
    for (int id = 0; id < 4; ++id) {
        const std::string head = "client " + std::to_string(id) + " line ";
        const std::vector<std::string> expected = {head + "0\n", head + "1\n", head + "2\n",
                                                   "<eof>"};
        CHECK(all[static_cast<std::size_t>(id)] == expected);
    }
    CHECK(srv.stats().accepted == 4);
    srv.close();
    co_await srv.wait_closed();
    CHECK_FALSE(srv.is_serving());
    CHECK(srv.stats().active == 0);
}

TEST_CASE("a Unix stream server echoes lines to open_unix_connection clients", "[net][unix]") {
    temp_dir dir;
    run_clean(stream_echo(dir.file("s.sock")));
}

TEST_CASE("a server in the abstract namespace works and creates no file", "[net][unix]") {
    // A name unique to this process and test run.
    std::string name = std::string(1, '\0') + "coio-test-" + std::to_string(::getpid()) + "-" +
                       std::to_string(std::rand());
    run_clean(stream_echo(name));
}

// A stateful handler: its coroutine reads members through `this` after
// suspending, so the server must keep the handler object alive.
struct greeter {
    std::string greeting;
    std::shared_ptr<int> served;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) const {
        std::string name = co_await r.readline();
        w.write(greeting + name);
        co_await w.drain();
        ++*served;
        w.close();
        co_await w.wait_closed();
    }
};

coio::task<> stateful(std::string path) {
    auto served = std::make_shared<int>(0);
    greeter g{"hello, ", served};
    coio::unix_server srv = co_await coio::start_unix_server(g, path);
    g.greeting = "changed after start: ";
    for (int i = 0; i < 3; ++i) {
        coio::stream_pair p = co_await coio::open_unix_connection(path);
        p.writer.write("client " + std::to_string(i) + "\n");
        std::string line = co_await p.reader.readline();
        CHECK(line == "hello, client " + std::to_string(i) + "\n");
        p.writer.close();
        co_await p.writer.wait_closed();
    }
    srv.close();
    co_await srv.wait_closed();
    CHECK(*served == 3);
}

TEST_CASE("a stateful handler is copied once and kept alive by the Unix server", "[net][unix]") {
    temp_dir dir;
    run_clean(stateful(dir.file("s.sock")));
}

// --- raw sockets and paths -------------------------------------------------------------

coio::task<> raw_handler(coio::socket s) {
    // The peer is an unbound client: no path (asyncio's peername '').
    std::string line = local_unix_path(s) + "|" + peer_unix_path(s) + "|" +
                       (coio::test::is_nonblocking(s.native_handle()) ? "nb" : "blocking") +
                       (coio::test::is_cloexec(s.native_handle()) ? ",cloexec" : "");
    co_await s.write_all(line);
}

coio::task<> raw_sockets(std::string path) {
    coio::unix_server srv = co_await coio::start_unix_server(raw_handler, path);
    coio::socket c = co_await coio::connect_unix(path);
    CHECK(coio::test::is_nonblocking(c.native_handle()));
    CHECK(coio::test::is_cloexec(c.native_handle()));
    CHECK(coio::peer_unix_path(c) == path);
    CHECK(coio::local_unix_path(c).empty());
    std::string got;
    std::array<char, 512> buf{};
    for (;;) {
        coio::io_result r = co_await c.read_some(buf);
        if (!r) {
            CHECK(r.status == coio::io_status::eof);
            break;
        }
        got.append(buf.data(), r.bytes);
    }
    CHECK(got == path + "||nb,cloexec");

    // Streams over a Unix socket have no IP address (documented in unix.hpp).
    coio::stream_pair p = co_await coio::open_unix_connection(path);
    CHECK(p.writer.peer_address().empty());
    CHECK(p.writer.local_address().to_string() == "(no address)");
    p.writer.close();
    srv.close();
    co_await srv.wait_closed();
}

TEST_CASE("raw Unix sockets are non-blocking and close-on-exec and report their paths",
          "[net][unix]") {
    temp_dir dir;
    run_clean(raw_sockets(dir.file("s.sock")));
}

coio::task<std::string> start_error(std::string path) {
    try {
        coio::unix_server srv = co_await coio::start_unix_server(line_echo, path);
    } catch (const coio::net_error& e) {
        co_return std::string(e.what()) + " [" + std::to_string(e.code().value()) + "]";
    }
    co_return "no error";
}

coio::task<std::string> connect_error(std::string path) {
    try {
        coio::stream_pair p = co_await coio::open_unix_connection(path);
    } catch (const coio::net_error& e) {
        co_return std::string(e.what()) + " [" + std::to_string(e.code().value()) + "]";
    }
    co_return "no error";
}

TEST_CASE("a path too long for a Unix socket throws net_error naming the path", "[net][unix]") {
    const std::string path = "/tmp/" + std::string(110, 'p');
    const std::string expected = path + " (115 bytes; a Unix socket path holds at most 107): " +
                                 std::strerror(ENAMETOOLONG) + " [" + std::to_string(ENAMETOOLONG) +
                                 "]";
    CHECK(run_clean(start_error(path)) == "bind " + expected);
    CHECK(run_clean(connect_error(path)) == "connect to " + expected);
    // 107 bytes is the most a file path may have; it gets as far as the file system.
    const std::string longest = "/nonexistent-dir/" + std::string(90, 'q');
    REQUIRE(longest.size() == 107);
    CHECK(run_clean(connect_error(longest)) == "connect to " + longest + ": " +
                                                   std::strerror(ENOENT) + " [" +
                                                   std::to_string(ENOENT) + "]");
}

TEST_CASE("connecting to a missing path throws net_error naming the path", "[net][unix]") {
    temp_dir dir;
    const std::string path = dir.file("s.sock");
    CHECK(run_clean(connect_error(path)) == "connect to " + path + ": " + std::strerror(ENOENT) +
                                                " [" + std::to_string(ENOENT) + "]");
}

TEST_CASE("a path with a NUL inside is rejected", "[net][unix]") {
    const std::string path = std::string("/tmp/a") + '\0' + "b";
    CHECK_THROWS_AS(run_clean(connect_error(path)), std::invalid_argument);
}

// (task_handle<T> needs a copyable T even when moved from: keep the socket here.)
coio::task<> connect_into(std::string path, coio::socket* out) {
    *out = co_await coio::connect_unix(std::move(path));
}

// Regression (epoll): a connect to a listener whose backlog was full parked in
// the backend forever (nothing signals room), while io_uring returned EAGAIN.
coio::task<> full_backlog(std::string path) {
    int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(lfd >= 0);
    coio::socket listener(lfd);
    const sockaddr_un sa = unix_sockaddr(path);
    REQUIRE(::bind(lfd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(lfd, 0) == 0); // room for one pending connection
    coio::socket first = co_await coio::connect_unix(path);

    coio::socket s2;
    coio::socket s3;
    coio::task_handle<> second = coio::create_task(connect_into(path, &s2));
    coio::task_handle<> third = coio::create_task(connect_into(path, &s3));
    for (int i = 0; i < 3; ++i) {
        co_await coio::yield_now();
    }
    CHECK_FALSE(second.done()); // waiting for room, as a blocking connect would
    CHECK_FALSE(third.done());
    CHECK(third.cancel());
    bool cancelled = false;
    try {
        co_await third;
    } catch (const coio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    CHECK_FALSE(s3.is_open());

    coio::socket accepted(::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    REQUIRE(accepted.is_open());
    co_await second;
    CHECK(s2.is_open());
    CHECK(coio::peer_unix_path(s2) == path);
    ::unlink(path.c_str());
}

TEST_CASE("connecting to a Unix listener with a full backlog waits for room and can be cancelled",
          "[net][unix]") {
    temp_dir dir;
    run_clean(full_backlog(dir.file("s.sock")));
}

// --- a handler's exception ----------------------------------------------------------

coio::task<> boom(coio::socket s) {
    std::array<char, 16> buf{};
    coio::io_result r = co_await s.read_some(buf);
    if (r && std::string_view(buf.data(), r.bytes) == "boom") {
        throw std::runtime_error("handler failed on purpose");
    }
    if (r) {
        co_await s.write_all(std::string_view(buf.data(), r.bytes));
    }
}

coio::task<> one_round(std::string path, std::string msg, std::string* reply) {
    coio::socket c = co_await coio::connect_unix(path);
    coio::io_result w = co_await c.write_all(msg);
    REQUIRE(w.ok());
    std::array<char, 16> buf{};
    coio::io_result r = co_await c.read_some(buf);
    *reply = r ? std::string(buf.data(), r.bytes) : std::string(coio::to_string(r.status));
}

coio::task<> unix_handler_exception(std::string path, std::vector<std::string>* reports) {
    coio::event_loop::running().set_exception_handler([reports](const coio::exception_context& c) {
        reports->push_back(std::string(c.task_name) + " | " + std::string(c.message));
    });
    coio::unix_server srv = co_await coio::start_unix_server(boom, path);
    std::string bad;
    co_await one_round(path, "boom", &bad);
    CHECK(bad == "eof"); // the handler's socket closed as it unwound
    std::string good;
    co_await one_round(path, "fine", &good);
    CHECK(good == "fine"); // the server goes on serving
    CHECK(srv.stats().accepted == 2);
    srv.close();
    co_await srv.wait_closed();
}

TEST_CASE("a Unix handler's exception goes to the exception handler naming the path",
          "[net][unix]") {
    temp_dir dir;
    std::vector<std::string> reports;
    run_clean(unix_handler_exception(dir.file("s.sock"), &reports));
    REQUIRE(reports.size() == 1);
    const std::string name = "connection on " + dir.file("s.sock");
    CHECK(reports.front() ==
          name + " | " + name + ": the handler raised handler failed on purpose");
}

// --- out of fds ---------------------------------------------------------------------

// Lowers RLIMIT_NOFILE so that exactly `spare` more fds can be opened, for
// its lifetime.
class fd_limit {
public:
    explicit fd_limit(int spare) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &m_old) == 0);
        int free = 0;
        int fd = 0;
        for (; free < spare; ++fd) {
            if (::fcntl(fd, F_GETFD) == -1) {
                ++free;
            }
        }
        rlimit lim = m_old;
        lim.rlim_cur = static_cast<rlim_t>(fd);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
    }
    fd_limit(const fd_limit&) = delete;
    fd_limit& operator=(const fd_limit&) = delete;
    ~fd_limit() { ::setrlimit(RLIMIT_NOFILE, &m_old); }

private:
    rlimit m_old{};
};

coio::task<> echo_once(coio::socket s) {
    std::array<char, 16> buf{};
    coio::io_result r = co_await s.read_some(buf);
    if (r) {
        co_await s.write_all(std::string_view(buf.data(), r.bytes));
    }
}

coio::task<> out_of_fds(std::string path, std::vector<std::string>* reports) {
    coio::event_loop::running().set_exception_handler(
        [reports](const coio::exception_context& c) { reports->emplace_back(c.message); });
    coio::unix_server srv = co_await coio::start_unix_server(echo_once, path);
    // Clients wait in the backlog; their fds exist before the limit drops.
    constexpr int n = 4;
    std::vector<coio::socket> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(connected_client(path));
    }
    {
        // The server can hold one connection: each further accept fails with
        // EMFILE until the previous handler has closed its socket.
        fd_limit limit(1);
        for (int i = 0; i < n; ++i) {
            const std::string msg = std::to_string(i);
            coio::io_result w = co_await clients[static_cast<std::size_t>(i)].write_all(msg);
            REQUIRE(w.ok());
            std::array<char, 16> buf{};
            coio::io_result r = co_await clients[static_cast<std::size_t>(i)].read_some(buf);
            REQUIRE(r.ok());
            CHECK(std::string(buf.data(), r.bytes) == msg);
        }
    }
    coio::server_stats st = srv.stats();
    CHECK(st.accepted == n);
    CHECK(st.accept_errors >= 1);
    CHECK(st.accept_pauses >= 1);
    srv.close();
    co_await srv.wait_closed();
}

// UBSan's vptr check probes memory through a pipe (sanitizer_common's
// IsAccessibleMemoryRange), which fails while no fd is free and is then
// reported as an invalid vptr; the ASan+UBSan build skips this test.
#if defined(__SANITIZE_ADDRESS__)
#define COIO_TEST_SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COIO_TEST_SANITIZERS 1
#endif
#endif

#if defined(COIO_TEST_SANITIZERS)
#define COIO_SKIP_UNDER_SANITIZERS()                                                               \
    do {                                                                                           \
        WARN("skipped under sanitizers: their runtime needs free fds");                            \
        return;                                                                                    \
    } while (false)
#else
#define COIO_SKIP_UNDER_SANITIZERS()                                                               \
    do {                                                                                           \
    } while (false)
#endif

TEST_CASE("a Unix server out of fds pauses accepting and serves every client once fds are free",
          "[net][unix]") {
    COIO_SKIP_UNDER_SANITIZERS();
    COIO_SKIP_UNDER_VALGRIND(); // fd_limit lowers RLIMIT_NOFILE
    temp_dir dir;
    std::vector<std::string> reports;
    run_clean(out_of_fds(dir.file("s.sock"), &reports));
    REQUIRE_FALSE(reports.empty());
    CHECK(reports.front() == "accept on " + dir.file("s.sock") + ": " + std::strerror(EMFILE) +
                                 "; accepting paused until a connection closes (at most 1 s)");
}

// The server is closed while its accept is paused, and run() is left at once:
// close() ends the pause and posts the accept loop, and the loop's teardown
// then cancels every task before that post has run. The pause must end once
// (a second post resumed a finished frame: the Unix test above crashed that
// way on io_uring), and run_clean finds nothing left behind.
coio::task<> close_while_paused(std::string path) {
    coio::unix_server srv = co_await coio::start_unix_server(echo_once, path);
    coio::socket client = connected_client(path);
    bool armed = false;
    {
        fd_limit limit(0); // the accept fails with EMFILE, and the server pauses
        // Close while the pause's timer is queued (the only timer here). If
        // the machine stalls past the backoff, the timer ends that pause, the
        // accept fails again and the server pauses again: wait for that one.
        for (int i = 0; i < 100'000 && !armed; ++i) {
            armed =
                srv.stats().accept_pauses >= 1 && coio::event_loop::running().stats().timers == 1;
            if (!armed) {
                co_await coio::yield_now();
            }
        }
        REQUIRE(armed);
        srv.close(); // ends the armed pause: the accept loop is posted
    }
    CHECK(srv.stats().accepted == 0);
} // no wait_closed: the accept loop is still posted when run() starts its teardown

TEST_CASE("a server closed while its accept is paused, with run() ending at once, ends cleanly",
          "[net][unix]") {
    COIO_SKIP_UNDER_SANITIZERS();
    COIO_SKIP_UNDER_VALGRIND(); // fd_limit lowers RLIMIT_NOFILE
    temp_dir dir;
    run_clean(close_while_paused(dir.file("s.sock")));
}

// --- the socket file --------------------------------------------------------------------

coio::task<> close_removes(std::string path) {
    coio::unix_server srv = co_await coio::start_unix_server(line_echo, path);
    CHECK(is_socket_file(path));
    srv.close();
    CHECK_FALSE(exists(path));
    co_await srv.wait_closed();
}

TEST_CASE("closing a Unix server removes its socket file", "[net][unix]") {
    temp_dir dir;
    run_clean(close_removes(dir.file("s.sock")));
}

coio::task<> close_keeps_replacement(std::string path, std::string other) {
    coio::unix_server srv = co_await coio::start_unix_server(line_echo, path);
    // Someone replaced the file meanwhile: close() must not remove theirs.
    FILE* f = std::fopen(other.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
    REQUIRE(::rename(other.c_str(), path.c_str()) == 0);
    srv.close();
    CHECK(exists(path));
    CHECK_FALSE(is_socket_file(path));
    co_await srv.wait_closed();
}

TEST_CASE("closing a Unix server leaves a file that replaced its socket file", "[net][unix]") {
    temp_dir dir;
    run_clean(close_keeps_replacement(dir.file("s.sock"), dir.file("other")));
}

// A socket file left behind by a process that died: bound, never removed.
void make_stale_socket_file(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const sockaddr_un sa = unix_sockaddr(path);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    ::close(fd);
    REQUIRE(is_socket_file(path));
}

TEST_CASE("a stale socket file is replaced, as asyncio does; another kind of file is not",
          "[net][unix]") {
    temp_dir dir;
    const std::string path = dir.file("s.sock");
    make_stale_socket_file(path);
    // Nobody listens there: connecting is refused.
    std::string refused = run_clean(connect_error(path));
    CHECK(refused == "connect to " + path + ": " + std::strerror(ECONNREFUSED) + " [" +
                         std::to_string(ECONNREFUSED) + "]");
    run_clean(stream_echo(path));
    CHECK_FALSE(exists(path));

    // A regular file is left alone: bind fails with EADDRINUSE naming the path.
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
    CHECK(run_clean(start_error(path)) == "bind " + path + ": " + std::strerror(EADDRINUSE) + " [" +
                                              std::to_string(EADDRINUSE) + "]");
    CHECK(exists(path));
}

} // namespace
