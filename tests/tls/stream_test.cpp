// tests/tls/stream_test.cpp - streams over TLS between coio clients and coio
// servers: lines, 64 MiB with every byte checked, TLS 1.2 and 1.3, ALPN,
// session resumption, client certificates, half-close with close_notify,
// start_tls, and the shutdown timeout.
#include "net/net_support.hpp"
#include "tls/tls_support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using coio::test::certs;
using coio::test::client_context;
using coio::test::run_clean;
using coio::test::server_context;

namespace {

// --- lines and what both sides see -----------------------------------------------------------

struct seen {
    coio::tls_info client;
    coio::tls_info server;
    std::string echoed;
};

struct info_echo {
    coio::tls_info* out;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        *out = w.tls().value();
        co_await coio::test::echo_lines(std::move(r), std::move(w));
    }
};

coio::task<seen> exchange(coio::tls_context_options client_opts,
                          coio::tls_context_options server_opts, std::string server_name) {
    seen s;
    info_echo handler{&s.server};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0,
                                                   server_context(std::move(server_opts)));
    {
        coio::tls_options o{.server_hostname = std::move(server_name)};
        auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(),
                                                     client_context(std::move(client_opts)), o);
        w.write("hello over TLS\n");
        s.echoed = co_await r.readline();
        s.client = w.tls().value();
        w.close();
        co_await w.wait_closed();
    }
    srv.close();
    co_await srv.wait_closed();
    co_return s;
}

TEST_CASE("a TLS client and server exchange lines and see the negotiated parameters", "[tls]") {
    seen s = run_clean(exchange({}, {}, "localhost"));
    CHECK(s.echoed == "hello over TLS\n");
    CHECK(s.client.version == "TLSv1.3");
    CHECK(s.server.version == "TLSv1.3");
    CHECK(!s.client.cipher.empty());
    CHECK(s.client.cipher == s.server.cipher);
    CHECK(s.client.server_name == "localhost");
    CHECK(s.server.server_name == "localhost");
    CHECK(s.client.peer_verified);
    REQUIRE(s.client.peer_certificate.has_value());
    const coio::tls_certificate_info& c = *s.client.peer_certificate;
    CHECK(c.subject == "CN=localhost");
    CHECK(c.issuer == "CN=coio test CA");
    CHECK(c.dns_names == std::vector<std::string>{"localhost"});
    CHECK(c.ip_addresses == std::vector<std::string>{"127.0.0.1", "::1"});
    CHECK(c.serial == "02");
    CHECK(c.sha256_fingerprint.size() == 64);
    const auto now = std::chrono::system_clock::now();
    CHECK(c.not_before < now);
    CHECK(c.not_after > now);
    // The server asked for no client certificate.
    CHECK(!s.server.peer_certificate.has_value());
    CHECK(!s.server.peer_verified);
}

TEST_CASE("an IP address as the server name is checked against the certificate's IP SANs",
          "[tls]") {
    seen s = run_clean(exchange({}, {}, "127.0.0.1"));
    CHECK(s.echoed == "hello over TLS\n");
    CHECK(s.client.server_name.empty()); // no SNI for an address (RFC 6066)
    CHECK(s.client.peer_verified);
}

TEST_CASE("TLS 1.2 works when a side allows no more", "[tls]") {
    seen a = run_clean(exchange({.max_version = coio::tls_version::tls1_2}, {}, "localhost"));
    CHECK(a.echoed == "hello over TLS\n");
    CHECK(a.client.version == "TLSv1.2");
    seen b = run_clean(exchange({}, {.max_version = coio::tls_version::tls1_2}, "localhost"));
    CHECK(b.server.version == "TLSv1.2");
}

TEST_CASE("a chosen TLS 1.3 cipher suite is the one negotiated", "[tls]") {
    seen s = run_clean(exchange({.ciphersuites = "TLS_AES_128_GCM_SHA256"}, {}, "localhost"));
    CHECK(s.client.cipher == "TLS_AES_128_GCM_SHA256");
}

TEST_CASE("ALPN picks the server's first protocol the client offers, or none", "[tls]") {
    seen s = run_clean(exchange({.alpn = {"x-other", "http/1.1", "h2"}},
                                {.alpn = {"h2", "http/1.1"}}, "localhost"));
    CHECK(s.client.alpn == "h2");
    CHECK(s.server.alpn == "h2");
    seen none = run_clean(exchange({.alpn = {"x-other"}}, {.alpn = {"h2"}}, "localhost"));
    CHECK(none.echoed == "hello over TLS\n");
    CHECK(none.client.alpn.empty());
}

TEST_CASE("a client certificate is verified and shown to the server", "[tls]") {
    seen s = run_clean(exchange(
        {.cert_file = certs().client_cert, .key_file = certs().client_key},
        {.ca_file = certs().ca, .client_auth = coio::tls_client_auth::required}, "localhost"));
    CHECK(s.echoed == "hello over TLS\n");
    CHECK(s.server.peer_verified);
    REQUIRE(s.server.peer_certificate.has_value());
    CHECK(s.server.peer_certificate->subject == "CN=coio test client");
}

// --- session resumption ------------------------------------------------------------------------

coio::task<std::vector<bool>> reused_flags(coio::tls_context_options server_opts, int n) {
    coio::server srv = co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0,
                                                   server_context(std::move(server_opts)));
    coio::tls_context ctx = client_context(); // one context: its cache is shared
    std::vector<bool> out;
    for (int i = 0; i < n; ++i) {
        coio::tls_options o{.server_hostname = "localhost"}; // named: g++ 12, docs/design.md
        auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(), ctx, o);
        w.write("x\n"); // reading the echo also reads the session tickets
        std::string back = co_await r.readline();
        CHECK(back == "x\n");
        out.push_back(w.tls()->session_reused);
        w.close();
        co_await w.wait_closed();
    }
    srv.close();
    co_await srv.wait_closed();
    co_return out;
}

TEST_CASE("a client context resumes the session of its last connection to the server", "[tls]") {
    std::vector<bool> r = run_clean(reused_flags({}, 3));
    CHECK(r == std::vector<bool>{false, true, true});
    std::vector<bool> off = run_clean(reused_flags({.session_resumption = false}, 2));
    CHECK(off == std::vector<bool>{false, false});
}

// --- bulk ------------------------------------------------------------------------------------

struct chunk_echo {
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        for (;;) {
            std::string data = co_await r.read(256 * 1024);
            if (data.empty()) {
                break;
            }
            w.write(data);
            co_await w.drain();
        }
        w.close();
        co_await w.wait_closed();
    }
};

coio::task<> send_pattern(coio::stream_writer w, std::size_t total) {
    std::vector<char> block;
    constexpr std::size_t step = 100'003; // not a multiple of any record or buffer size
    for (std::size_t off = 0; off < total; off += step) {
        const std::size_t n = std::min(step, total - off);
        block.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            block[i] = coio::test::pattern_byte(7, off + i);
        }
        w.write(std::string_view(block.data(), n));
        co_await w.drain();
    }
    w.write_eof();
}

coio::task<std::size_t> check_pattern(coio::stream_reader r, std::size_t total) {
    std::size_t at = 0;
    for (;;) {
        std::string got = co_await r.read(1 << 20);
        if (got.empty()) {
            break;
        }
        const std::size_t bad = coio::test::first_mismatch(7, at, got);
        if (bad != std::string::npos) {
            FAIL("byte " << bad << " differs");
        }
        at += got.size();
    }
    CHECK(at == total);
    co_return at;
}

coio::task<std::size_t> bulk_echo(std::size_t total, coio::tls_context_options client_opts) {
    chunk_echo handler;
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0, server_context());
    auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(),
                                                 client_context(std::move(client_opts)));
    auto [sent, got] = co_await coio::gather(send_pattern(w, total), check_pattern(r, total));
    (void)sent;
    CHECK(w.tls()->close_notify_received);
    CHECK(!w.tls()->truncated);
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    co_return got;
}

TEST_CASE("64 MiB go through a TLS echo and back with every byte checked", "[tls][bulk]") {
    const std::size_t total = 64u << 20;
    CHECK(run_clean(coio::wait_for(bulk_echo(total, {}), 120s)) == total);
}

TEST_CASE("8 MiB go through a TLS 1.2 echo with every byte checked", "[tls][bulk]") {
    const std::size_t total = 8u << 20;
    CHECK(run_clean(coio::wait_for(bulk_echo(total, {.max_version = coio::tls_version::tls1_2}),
                                   60s)) == total);
}

// --- half-close, close_notify ----------------------------------------------------------------

// RELIABILITY 9 over TLS: the client sends 1 MiB and write_eof (close_notify,
// then FIN); the server reads to the end, then replies 1 MiB.
struct half_close_server {
    coio::tls_info* info;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        std::string all = co_await r.read(-1);
        *info = w.tls().value();
        w.write(std::string(all.size(), 'r'));
        w.close();
        co_await w.wait_closed();
    }
};

coio::task<> half_close(coio::tls_info* server_seen, coio::tls_context_options client_opts) {
    half_close_server handler{server_seen};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0, server_context());
    auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(),
                                                 client_context(std::move(client_opts)));
    w.write(std::string(1 << 20, 'q'));
    w.write_eof();
    std::string reply = co_await r.read(-1);
    CHECK(reply == std::string(1 << 20, 'r'));
    CHECK(w.tls()->close_notify_received);
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
}

TEST_CASE("write_eof sends close_notify and a FIN, and the peer can still reply", "[tls]") {
    coio::tls_info server_seen;
    run_clean(coio::wait_for(half_close(&server_seen, {}), 30s));
    CHECK(server_seen.close_notify_received);
    CHECK(!server_seen.truncated);
    CHECK(server_seen.version == "TLSv1.3");
}

TEST_CASE("after write_eof the peer can still reply over TLS 1.2", "[tls]") {
    coio::tls_info server_seen;
    run_clean(
        coio::wait_for(half_close(&server_seen, {.max_version = coio::tls_version::tls1_2}), 30s));
    CHECK(server_seen.close_notify_received);
    CHECK(server_seen.version == "TLSv1.2");
}

// --- start_tls ---------------------------------------------------------------------------------

struct starttls_server {
    coio::event* may_handshake; // the client is mid-handshake until this is set
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        std::string cmd = co_await r.readline();
        REQUIRE(cmd == "STARTTLS\n");
        w.write("GO\n");
        co_await may_handshake->wait();
        co_await w.start_tls(server_context());
        co_await coio::test::echo_lines(std::move(r), std::move(w));
    }
};

coio::task<std::vector<std::string>> starttls_client(bool write_during_handshake) {
    coio::event may_handshake;
    starttls_server handler{&may_handshake};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0);
    auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port());
    CHECK(!w.tls().has_value());
    w.write("STARTTLS\n");
    std::vector<std::string> got;
    got.push_back(co_await r.readline());
    coio::task_handle<> up =
        coio::create_task(w.start_tls(client_context(), {.server_hostname = "localhost"}));
    // The task starts on the next iteration, before this one resumes: then
    // the session is set up and waits for the server's hello.
    co_await coio::yield_now();
    if (write_during_handshake) {
        w.write("early\n"); // kept by the session until the handshake is done
    }
    may_handshake.set();
    co_await up;
    CHECK(w.tls().has_value());
    w.write("after\n");
    got.push_back(co_await r.readline());
    if (write_during_handshake) {
        got.push_back(co_await r.readline());
    }
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    co_return got;
}

TEST_CASE("start_tls upgrades a plain connection on both sides", "[tls][starttls]") {
    std::vector<std::string> got = run_clean(coio::wait_for(starttls_client(false), 30s));
    CHECK(got == std::vector<std::string>{"GO\n", "after\n"});
}

TEST_CASE("what is written while start_tls runs goes out encrypted after the handshake",
          "[tls][starttls]") {
    std::vector<std::string> got = run_clean(coio::wait_for(starttls_client(true), 30s));
    CHECK(got == std::vector<std::string>{"GO\n", "early\n", "after\n"});
}

coio::task<> starttls_misuse() {
    coio::server srv =
        co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0, server_context());
    auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(), client_context());
    bool refused = false;
    try {
        co_await w.start_tls(client_context());
    } catch (const std::logic_error& e) {
        refused = std::string(e.what()).find("is already TLS") != std::string::npos;
    }
    CHECK(refused);
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
}

TEST_CASE("start_tls on a connection that is already TLS throws std::logic_error",
          "[tls][starttls]") {
    run_clean(coio::wait_for(starttls_misuse(), 30s));
}

// start_tls does not care what carries the stream: here a Unix socket.
struct upgrade_then_echo {
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        co_await w.start_tls(server_context());
        co_await coio::test::echo_lines(std::move(r), std::move(w));
    }
};

coio::task<std::string> tls_over_unix() {
    const std::string path = std::string("\0coio-tls-test-", 15) + std::to_string(::getpid());
    upgrade_then_echo handler;
    coio::unix_server srv = co_await coio::start_unix_server(handler, path);
    auto [r, w] = co_await coio::open_unix_connection(path);
    coio::tls_options o{.server_hostname = "localhost"};
    co_await w.start_tls(client_context(), o);
    w.write("over a unix socket\n");
    std::string back = co_await r.readline();
    CHECK(w.tls()->peer_verified);
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    co_return back;
}

TEST_CASE("start_tls works over a Unix socket too", "[tls][starttls]") {
    CHECK(run_clean(coio::wait_for(tls_over_unix(), 30s)) == "over a unix socket\n");
}

// --- close with a peer that does not read ------------------------------------------------------

struct flood_then_close {
    coio::event* closed;
    std::chrono::steady_clock::duration* took;
    coio::task<> operator()(coio::stream_reader, coio::stream_writer w) {
        w.write(std::string(32u << 20, 'f')); // far more than the socket buffers hold
        const auto start = std::chrono::steady_clock::now();
        w.close();
        co_await w.wait_closed();
        *took = std::chrono::steady_clock::now() - start;
        closed->set();
    }
};

coio::task<std::chrono::steady_clock::duration> shutdown_timeout() {
    coio::event closed;
    std::chrono::steady_clock::duration took{};
    flood_then_close handler{&closed, &took};
    coio::tls_options o{.shutdown_timeout = 300ms};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0, server_context(),
                                                   coio::server_options{}, o);
    auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(), client_context());
    co_await closed.wait(); // the client never reads
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    co_return took;
}

TEST_CASE("close gives up on a peer that does not read after the shutdown timeout", "[tls]") {
    auto took = run_clean(coio::wait_for(shutdown_timeout(), 30s));
    CHECK(took >= 250ms);
    CHECK(took < 10s);
}

TEST_CASE("a plain connection has no TLS info", "[tls]") {
    run_clean([]() -> coio::task<> {
        coio::server srv = co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0);
        auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port());
        CHECK(!w.tls().has_value());
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    }());
}

} // namespace
