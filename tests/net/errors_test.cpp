// tests/net/errors_test.cpp - expected failures come back as io_status
// (reset, eof, refused, cancelled), setup failures throw net_error naming the
// address, and cancellation unwinds cleanly. EMFILE on accept is in
// emfile_test.cpp.
#include "net/net_support.hpp"

#include <pthread.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <span>
#include <string>
#include <system_error>
#include <vector>

using coio::test::run_clean;

namespace {

// Blocks SIGPIPE for its lifetime, so that a send without MSG_NOSIGNAL leaves
// the signal pending (instead of killing the test binary) where raised() sees it.
class sigpipe_watch {
public:
    sigpipe_watch() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        REQUIRE(::pthread_sigmask(SIG_BLOCK, &set, &m_old) == 0);
    }
    sigpipe_watch(const sigpipe_watch&) = delete;
    sigpipe_watch& operator=(const sigpipe_watch&) = delete;
    ~sigpipe_watch() {
        (void)raised(); // consume a pending one before unblocking
        ::pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
    }
    // True if SIGPIPE was raised since construction (and consumes it).
    bool raised() {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        timespec zero{};
        return ::sigtimedwait(&set, nullptr, &zero) == SIGPIPE;
    }

private:
    sigset_t m_old{};
};

// Close with SO_LINGER {on, 0}: the kernel sends RST instead of FIN.
void abort_close(coio::socket& s) {
    linger lg{1, 0};
    REQUIRE(::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    s.close();
}

// One read_some into a buffer of its own.
coio::task<coio::io_result> read_once(coio::socket* s) {
    std::array<char, 64> buf{};
    co_return co_await s->read_some(std::span(buf));
}

// Yield until the loop has `n` operations in flight (at most 100 passes).
coio::task<> until_in_flight(std::size_t n) {
    for (int i = 0; i < 100 && coio::event_loop::running().stats().io_in_flight != n; ++i) {
        co_await coio::yield_now();
    }
    REQUIRE(coio::event_loop::running().stats().io_in_flight == n);
}

// Compares with the portable condition (ec is in the system category).
bool is_errc(const std::error_code& ec, std::errc e) {
    return ec == e;
}

// --- reset ------------------------------------------------------------------------------

coio::task<> reset_mid_stream() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::io_result w = co_await p.client.write_all("mid-stream");
    REQUIRE(w.ok());
    std::array<char, 10> got{};
    coio::io_result r = co_await coio::test::read_exact(&p.accepted, got);
    REQUIRE(r.ok());
    CHECK(std::string(got.data(), got.size()) == "mid-stream");

    abort_close(p.client);
    std::array<char, 64> buf{};
    r = co_await p.accepted.read_some(std::span(buf));
    CHECK(r.status == coio::io_status::reset);
    CHECK(r.bytes == 0);
    CHECK(is_errc(r.error, std::errc::connection_reset));
    CHECK(r.message() == "reset: Connection reset by peer");

    // Writing into the dead connection: reset (EPIPE), and no SIGPIPE.
    w = co_await p.accepted.write_all("anyone there?");
    CHECK(w.status == coio::io_status::reset);
    CHECK(w.bytes == 0);
}

TEST_CASE("a read returns reset when the peer aborts the connection mid-stream, and a later "
          "write returns reset without SIGPIPE",
          "[net]") {
    sigpipe_watch sigpipe;
    run_clean(reset_mid_stream());
    CHECK_FALSE(sigpipe.raised());
}

coio::task<coio::io_result> write_pattern(coio::socket* s, std::size_t n) {
    const std::vector<char> data = coio::test::make_pattern(3, n);
    co_return co_await s->write_all(std::string_view(data.data(), data.size()));
}

// Reads `n` bytes, then aborts the connection.
coio::task<std::size_t> read_then_abort(coio::socket* s, std::size_t n) {
    std::vector<char> buf(n);
    coio::io_result r = co_await coio::test::read_exact(s, std::span(buf));
    CHECK(r.ok());
    CHECK(coio::test::first_mismatch(3, 0, buf) == std::string::npos);
    abort_close(*s);
    co_return r.bytes;
}

coio::task<> write_into_reset() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::test::shrink_buffers(p.client, 64 * 1024);
    coio::test::shrink_buffers(p.accepted, 64 * 1024);
    constexpr std::size_t total = 8 * 1024 * 1024; // far more than the buffers hold
    auto [w, read] = co_await coio::gather(write_pattern(&p.accepted, total),
                                           read_then_abort(&p.client, 64 * 1024));
    CHECK(read == 64 * 1024);
    CHECK(w.status == coio::io_status::reset);
    CHECK(w.bytes >= read);
    CHECK(w.bytes < total);
    CHECK((is_errc(w.error, std::errc::connection_reset) ||
           is_errc(w.error, std::errc::broken_pipe)));
}

TEST_CASE("write_all into a connection the peer resets mid-transfer returns reset without SIGPIPE",
          "[net]") {
    sigpipe_watch sigpipe;
    run_clean(write_into_reset());
    CHECK_FALSE(sigpipe.raised());
}

// --- eof --------------------------------------------------------------------------------

coio::task<> eof_after_data() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::io_result w = co_await p.client.write_all("bye");
    REQUIRE(w.ok());
    CHECK_FALSE(p.client.shutdown(coio::shutdown_how::write));
    std::array<char, 3> got{};
    coio::io_result r = co_await coio::test::read_exact(&p.accepted, got);
    CHECK(r.ok());
    std::array<char, 64> buf{};
    for (int i = 0; i < 2; ++i) { // and it stays at EOF
        r = co_await p.accepted.read_some(std::span(buf));
        CHECK(r.status == coio::io_status::eof);
        CHECK(r.bytes == 0);
        CHECK_FALSE(r.error);
        CHECK_FALSE(r.ok());
        CHECK(r.message() == "eof");
    }
    // The other direction is still open after a half-close.
    w = co_await p.accepted.write_all("still here");
    CHECK(w.ok());
    std::array<char, 10> back{};
    r = co_await coio::test::read_exact(&p.client, back);
    CHECK(r.ok());
    CHECK(std::string(back.data(), back.size()) == "still here");

    // A full close gives EOF too, to a read already waiting for data.
    coio::test::socket_pair q = co_await coio::test::connected_pair();
    coio::task_handle<coio::io_result> waiting = coio::create_task(read_once(&q.accepted));
    co_await until_in_flight(1);
    q.client.close();
    r = co_await waiting;
    CHECK(r.status == coio::io_status::eof);
    CHECK(r.bytes == 0);
}

TEST_CASE("reading at the end of the stream returns eof with zero bytes", "[net]") {
    run_clean(eof_after_data());
}

// --- refused ----------------------------------------------------------------------------

// A socket bound to 127.0.0.1:0 but not listening: connects to its port are
// refused for as long as it stays open (and nothing else can take the port).
coio::socket bound_not_listening() {
    coio::socket s = coio::socket::open_tcp(coio::address::family::ipv4);
    s.bind(coio::address::loopback_v4(0));
    return s;
}

coio::task<> connect_refused() {
    coio::socket holder = bound_not_listening();
    const coio::address to = holder.local_address();
    REQUIRE(to.port() != 0);
    coio::socket c = coio::socket::open_tcp(coio::address::family::ipv4);
    coio::io_result r = co_await c.connect(to);
    CHECK(r.status == coio::io_status::refused);
    CHECK(is_errc(r.error, std::errc::connection_refused));
    CHECK(r.message() == "refused: Connection refused");
}

TEST_CASE("socket::connect to a port nobody listens on returns refused", "[net]") {
    run_clean(connect_refused());
}

coio::task<> open_connection_refused() {
    coio::socket holder = bound_not_listening();
    const std::uint16_t port = holder.local_address().port();
    const std::string where = "127.0.0.1:" + std::to_string(port);
    for (int form = 0; form < 3; ++form) {
        std::string what;
        std::error_code code;
        try {
            coio::socket s;
            if (form == 0) {
                s = co_await coio::connect("127.0.0.1", port);
            } else if (form == 1) {
                s = co_await coio::connect(holder.local_address());
            } else {
                coio::stream_pair streams = co_await coio::open_connection("127.0.0.1", port);
            }
        } catch (const coio::net_error& e) {
            what = e.what();
            code = e.code();
        }
        INFO("form " << form << ": " << what);
        CHECK_THAT(what, Catch::Contains(where) && Catch::Contains("Connection refused"));
        CHECK(is_errc(code, std::errc::connection_refused));
    }
    // Names are resolved now (resolve.hpp); a failing lookup would query the
    // network's resolver, so the DNS error path is checked in thread_test.cpp
    // through dns_category() without a lookup.
}

TEST_CASE("connect and open_connection to a refused port throw net_error naming the address",
          "[net]") {
    run_clean(open_connection_refused());
}

// A socket bound to a port and connected to that same address connects to
// itself (TCP simultaneous open) on Linux; a client retrying a server that is
// down can get there by chance, with the ephemeral port the kernel picks.
// coio refuses it, and once the socket is closed a server can bind the port.
coio::task<> drop_client(coio::socket /*s*/) {
    co_return;
}

coio::task<> self_connect_refused() {
    coio::socket s = coio::socket::open_tcp(coio::address::family::ipv4);
    s.bind(coio::address::parse("127.0.0.1", 0));
    const coio::address self = s.local_address();
    coio::io_result r = co_await s.connect(self);
    INFO(r.message());
    CHECK(r.status == coio::io_status::refused);
    CHECK(is_errc(r.error, std::errc::connection_refused));
    s.close();
    coio::server srv = co_await coio::start_server(drop_client, "127.0.0.1", self.port());
    CHECK(srv.port() == self.port());
    srv.close();
    co_await srv.wait_closed();
}

TEST_CASE("a socket that connects to its own address is refused, and its port is free after "
          "close",
          "[net]") {
    run_clean(self_connect_refused());
}

// --- close and cancel -------------------------------------------------------------------

coio::task<> close_cancels_read() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::task_handle<coio::io_result> reader = coio::create_task(read_once(&p.accepted));
    co_await until_in_flight(1);
    p.accepted.close();
    CHECK_FALSE(p.accepted.is_open());
    coio::io_result r = co_await reader;
    CHECK(r.status == coio::io_status::cancelled);
    CHECK(r.bytes == 0);
    CHECK(is_errc(r.error, std::errc::operation_canceled));
    CHECK(r.message() == "cancelled: Operation canceled");
    CHECK(coio::event_loop::running().stats().io_in_flight == 0);
}

TEST_CASE("closing a socket completes a read in flight in another task with cancelled", "[net]") {
    run_clean(close_cancels_read());
}

coio::task<coio::io_result> write_big(coio::socket* s) {
    const std::vector<char> data = coio::test::make_pattern(5, 4 * 1024 * 1024);
    co_return co_await s->write_all(std::string_view(data.data(), data.size()));
}

coio::task<> close_cancels_write() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::test::shrink_buffers(p.client, 64 * 1024);
    coio::test::shrink_buffers(p.accepted, 64 * 1024);
    // Nobody reads p.accepted, so the writer ends up waiting for room.
    coio::task_handle<coio::io_result> writer = coio::create_task(write_big(&p.client));
    co_await until_in_flight(1);
    p.client.close();
    coio::io_result r = co_await writer;
    CHECK(r.status == coio::io_status::cancelled);
    CHECK(r.bytes < 4 * 1024 * 1024);
}

TEST_CASE("closing a socket completes a write_all waiting for buffer room with cancelled",
          "[net]") {
    run_clean(close_cancels_write());
}

// Regression (epoll): close() landing after one send of a write_all had
// completed but before write_all went on made the next send fail with EBADF,
// so write_all returned io_status::error instead of cancelled.
coio::task<> close_between_sends() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::test::shrink_buffers(p.client, 64 * 1024);
    coio::test::shrink_buffers(p.accepted, 64 * 1024);
    coio::task_handle<coio::io_result> writer = coio::create_task(write_big(&p.client));
    co_await until_in_flight(1); // the writer waits for room
    // Make room, so that the writer's send completes at the next poll; the
    // writer then runs after us in that pass, and we close first.
    std::vector<char> sink(512 * 1024);
    coio::io_result r = co_await p.accepted.read_some(std::span(sink));
    REQUIRE(r.ok());
    co_await coio::yield_now();
    p.client.close();
    coio::io_result w = co_await writer;
    CHECK(w.message() == "cancelled: Operation canceled");
    CHECK(w.bytes > 0);
    CHECK(w.bytes < 4 * 1024 * 1024);
}

TEST_CASE("closing a socket between two sends of a write_all completes it with cancelled",
          "[net]") {
    run_clean(close_between_sends());
}

coio::task<> blocked_reader(coio::socket* s, std::string* outcome) {
    std::array<char, 16> buf{};
    try {
        coio::io_result r = co_await s->read_some(std::span(buf));
        *outcome = "returned " + r.message();
    } catch (const coio::cancelled_error&) {
        *outcome = "cancelled_error";
        throw;
    }
}

coio::task<> cancel_blocked_read() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    std::string outcome;
    coio::task_handle<> reader = coio::create_task(blocked_reader(&p.accepted, &outcome), "reader");
    co_await until_in_flight(1);
    CHECK(reader.cancel());
    bool threw = false;
    try {
        co_await reader;
    } catch (const coio::cancelled_error&) {
        threw = true;
    }
    CHECK(threw);
    CHECK(outcome == "cancelled_error");
    CHECK(reader.done());
    CHECK(reader.cancelled());
    CHECK(coio::event_loop::running().stats().io_in_flight == 0);

    // The socket is still usable: the cancelled read took nothing from it.
    coio::io_result w = co_await p.client.write_all("after");
    REQUIRE(w.ok());
    std::array<char, 5> got{};
    coio::io_result r = co_await coio::test::read_exact(&p.accepted, got);
    CHECK(r.ok());
    CHECK(std::string(got.data(), got.size()) == "after");
}

TEST_CASE("cancelling a task blocked in read_some throws cancelled_error in it and leaves the "
          "loop clean",
          "[net]") {
    run_clean(cancel_blocked_read());
}

// --- messages and setup errors ----------------------------------------------------------

TEST_CASE("io_result::message gives the status and the errno text", "[net]") {
    using coio::io_result;
    using coio::io_status;
    auto sys = [](int e) { return std::error_code(e, std::system_category()); };
    CHECK(io_result{}.message() == "ok");
    CHECK(io_result{io_status::eof, 0, {}}.message() == "eof");
    CHECK(io_result{io_status::reset, 0, sys(ECONNRESET)}.message() ==
          "reset: Connection reset by peer");
    CHECK(io_result{io_status::reset, 3, sys(EPIPE)}.message() == "reset: Broken pipe");
    CHECK(io_result{io_status::refused, 0, sys(ECONNREFUSED)}.message() ==
          "refused: Connection refused");
    CHECK(io_result{io_status::timed_out, 0, sys(ETIMEDOUT)}.message() ==
          "timed out: Connection timed out");
    CHECK(io_result{io_status::cancelled, 0, sys(ECANCELED)}.message() ==
          "cancelled: Operation canceled");
    CHECK(io_result{io_status::error, 0, sys(EBADF)}.message() == "error: Bad file descriptor");
    CHECK(io_result{}.ok());
    CHECK(static_cast<bool>(io_result{}));
    CHECK_FALSE(static_cast<bool>(io_result{io_status::eof, 0, {}}));
}

TEST_CASE("errno values map to the documented io_status", "[net]") {
    using coio::io_status;
    using coio::detail::make_io_result;
    CHECK(make_io_result(5, 5).status == io_status::ok);
    CHECK(make_io_result(5, 5).bytes == 5);
    CHECK_FALSE(make_io_result(0, 0).error);
    CHECK(make_io_result(-ECONNRESET, 0).status == io_status::reset);
    CHECK(make_io_result(-EPIPE, 0).status == io_status::reset);
    CHECK(make_io_result(-ECONNABORTED, 0).status == io_status::reset);
    CHECK(make_io_result(-ECONNREFUSED, 0).status == io_status::refused);
    CHECK(make_io_result(-ETIMEDOUT, 0).status == io_status::timed_out);
    CHECK(make_io_result(-ECANCELED, 0).status == io_status::cancelled);
    CHECK(make_io_result(-EBADF, 0).status == io_status::error);
    CHECK(make_io_result(-EBADF, 0).error.value() == EBADF);
    CHECK(coio::to_string(io_status::ok) == "ok");
    CHECK(coio::to_string(io_status::eof) == "eof");
    CHECK(coio::to_string(io_status::reset) == "reset");
    CHECK(coio::to_string(io_status::refused) == "refused");
    CHECK(coio::to_string(io_status::timed_out) == "timed out");
    CHECK(coio::to_string(io_status::cancelled) == "cancelled");
    CHECK(coio::to_string(io_status::error) == "error");
}

coio::task<> address_in_use() {
    coio::socket holder = coio::socket::open_tcp(coio::address::family::ipv4);
    holder.bind(coio::address::loopback_v4(0));
    holder.listen();
    const std::uint16_t port = holder.local_address().port();
    const std::string where = "127.0.0.1:" + std::to_string(port);

    std::string what;
    std::error_code code;
    try {
        coio::server srv = co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", port);
    } catch (const coio::net_error& e) {
        what = e.what();
        code = e.code();
    }
    CHECK_THAT(what, Catch::Contains(where) && Catch::Contains("Address already in use"));
    CHECK(is_errc(code, std::errc::address_in_use));

    coio::socket again = coio::socket::open_tcp(coio::address::family::ipv4);
    again.set_reuse_address(true); // does not allow sharing a listening port
    CHECK_THROWS_WITH(again.bind(coio::address::loopback_v4(port)),
                      Catch::Contains("bind " + where) &&
                          Catch::Contains("Address already in use"));
}

TEST_CASE("binding an address already in use throws net_error naming the address", "[net]") {
    run_clean(address_in_use());
}

} // namespace
