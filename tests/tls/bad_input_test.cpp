// tests/tls/bad_input_test.cpp - hostile and broken peers (issue #12 item 5):
// each gets a clear error naming the peer and OpenSSL's reason, never a crash
// or a hang, and the server keeps serving everyone else.
#include "net/net_support.hpp"
#include "tls/tls_support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::certs;
using coio::test::child_process;
using coio::test::client_context;
using coio::test::run_clean;
using coio::test::server_context;

namespace {

const std::string peer_py = COIO_TEST_SOURCE_DIR "/tls/tls_peer.py";

// A TLS client that checks the server still works.
coio::task<std::string> good_client(std::uint16_t port) {
    coio::tls_options o{.server_hostname = "localhost"};
    auto [r, w] = co_await coio::open_connection("127.0.0.1", port, client_context(), o);
    w.write("still serving\n");
    std::string back = co_await r.readline();
    w.close();
    co_await w.wait_closed();
    co_return back;
}

// A plain TCP client that sends `bytes` (then a FIN if asked, or a reset if
// `reset`) and reads until the server closes. Returns its own address, by
// which the server's report names it.
coio::task<std::string> raw_client(std::uint16_t port, std::string bytes, bool fin, bool reset) {
    coio::socket s = co_await coio::connect(coio::address::loopback_v4(port));
    const std::string me = s.local_address().to_string();
    coio::io_result w = co_await s.write_all(bytes);
    CHECK(w.ok());
    if (reset) {
        ::linger l{1, 0};
        ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
        s.close();
        co_return me;
    }
    if (fin) {
        (void)s.shutdown(coio::shutdown_how::write);
    }
    std::array<char, 4096> buf{};
    for (;;) {
        coio::io_result r = co_await s.read_some(std::span(buf));
        if (!r) {
            break; // the server closed (maybe after an alert)
        }
    }
    co_return me;
}

// The report about `who`, or "" (the test fails if there is none).
std::string report_about(const coio::test::reports& reps, const std::string& who) {
    for (const std::string& m : reps.messages) {
        if (m.find(who + ":") != std::string::npos) {
            return m;
        }
    }
    FAIL_CHECK("no report names " << who);
    return {};
}

// A TLS server with reports collected; `hostile` runs against it, then a good
// client must still be served, and nothing is left running.
template <class Hostile>
coio::task<std::vector<std::string>> against_server(coio::test::reports* reps, Hostile hostile,
                                                    coio::tls_options opts) {
    reps->install();
    coio::server srv = co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0,
                                                   server_context(), coio::server_options{}, opts);
    std::vector<std::string> who = co_await hostile(srv.port());
    std::string back = co_await good_client(srv.port());
    CHECK(back == "still serving\n");
    srv.close();
    co_await srv.wait_closed();
    CHECK(srv.stats().active == 0);
    co_return who;
}

struct send_bytes {
    std::string bytes;
    bool fin = true;
    bool reset = false;
    coio::task<std::vector<std::string>> operator()(std::uint16_t port) const {
        std::string me = co_await raw_client(port, bytes, fin, reset);
        co_return std::vector<std::string>{me};
    }
};

std::string handshake_report(send_bytes hostile) {
    coio::test::reports reps;
    std::vector<std::string> who =
        run_clean(coio::wait_for(against_server(&reps, hostile, coio::tls_options{}), 30s));
    REQUIRE(who.size() == 1);
    std::string m = report_about(reps, "TLS handshake from " + who[0]);
    CHECK(m.find("; connection closed") != std::string::npos);
    return m;
}

TEST_CASE("plaintext HTTP to a TLS port is refused with OpenSSL's reason", "[tls][hostile]") {
    std::string m = handshake_report({"GET / HTTP/1.1\r\nHost: x\r\n\r\n"});
    CHECK(m.find(": http request; connection closed") != std::string::npos);
}

TEST_CASE("garbage to a TLS port is refused with OpenSSL's reason", "[tls][hostile]") {
    std::string junk(1000, '\0');
    for (std::size_t i = 0; i < junk.size(); ++i) {
        junk[i] = coio::test::pattern_byte(1, i);
    }
    junk[0] = 'x';
    std::string m = handshake_report({junk});
    CHECK(m.find(": wrong version number; connection closed") != std::string::npos);
}

TEST_CASE("a handshake record that is not a handshake is refused", "[tls][hostile]") {
    // A handshake record (0x16, TLS 1.0) of 16 bytes that hold no ClientHello.
    std::string rec("\x16\x03\x01\x00\x10", 5);
    rec.append(16, '\x42'); // not operator+: g++ 12 -O1 warns (-Warray-bounds) on it wrongly
    std::string m = handshake_report({rec});
    CHECK(m.find("TLS handshake from") == 0);
}

TEST_CASE("a truncated handshake ends when the peer closes", "[tls][hostile]") {
    // The header announces 512 bytes; 6 come, then the FIN.
    std::string part = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    std::string m = handshake_report({part});
    CHECK(m.find(": the peer closed the connection during the handshake; connection closed") !=
          std::string::npos);
}

TEST_CASE("a peer that resets during the handshake is reported", "[tls][hostile]") {
    std::string part = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    std::string m = handshake_report({part, false, true});
    CHECK(m.find("reset") != std::string::npos);
}

// Connects and sends nothing; a good client is served while it waits.
struct silent_client {
    coio::task<std::vector<std::string>> operator()(std::uint16_t port) const {
        coio::socket s = co_await coio::connect(coio::address::loopback_v4(port));
        const std::string me = s.local_address().to_string();
        const auto start = std::chrono::steady_clock::now();
        std::string back = co_await good_client(port);
        CHECK(back == "still serving\n");
        std::array<char, 256> buf{};
        coio::io_result r = co_await s.read_some(std::span(buf)); // the server gives up
        CHECK(!r.ok());
        CHECK(std::chrono::steady_clock::now() - start >= 1400ms);
        co_return std::vector<std::string>{me};
    }
};

TEST_CASE("a slow handshake times out and the server serves others meanwhile", "[tls][hostile]") {
    coio::test::reports reps;
    // 1.5 s: the timeout applies to the good client's handshake too, which
    // must finish within it on a loaded sanitizer run.
    coio::tls_options o{.handshake_timeout = 1500ms};
    std::vector<std::string> who =
        run_clean(coio::wait_for(against_server(&reps, silent_client{}, o), 30s));
    REQUIRE(who.size() == 1);
    CHECK(report_about(reps, "TLS handshake from " + who[0]) ==
          "TLS handshake from " + who[0] + ": timed out after 1500 ms; connection closed");
}

// Python's ssl module forges an application-data record under an
// established session.
struct forged_record {
    coio::task<std::vector<std::string>> operator()(std::uint16_t port) const {
        child_process py(
            {"python3", peer_py, "corrupt", "--port", std::to_string(port), "--ca", certs().ca});
        std::string out = co_await py.out.read(-1);
        CHECK(out.rfind("closed", 0) == 0);
        CHECK(py.wait() == 0);
        co_return std::vector<std::string>{};
    }
};

TEST_CASE("a forged record after the handshake fails that connection only", "[tls][hostile]") {
    coio::test::reports reps;
    run_clean(coio::wait_for(against_server(&reps, forged_record{}, coio::tls_options{}), 30s));
    // The handler's readline threw; the server reports it as the handler's.
    REQUIRE(reps.messages.size() == 1);
    CHECK(reps.messages[0].find("the handler raised TLS read from 127.0.0.1:") !=
          std::string::npos);
    CHECK(reps.messages[0].find("bad record mac") != std::string::npos);
}

// openssl s_client over TLS 1.2 asks for a renegotiation ("R"): the server
// refuses with a no_renegotiation warning (written by SSL_read, so the read
// path's own output reaches the peer); s_client then gives up with a fatal
// alert, which fails that connection's read.
struct renegotiation {
    coio::task<std::vector<std::string>> operator()(std::uint16_t port) const {
        child_process cli({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                           "-CAfile", certs().ca, "-servername", "localhost", "-no_ign_eof",
                           "-tls1_2", "-msg"},
                          child_process::stderr_to::out);
        cli.in.write("before\n");
        (void)co_await coio::test::read_until_line(&cli.out, "before");
        cli.in.write("R\n");
        std::string refusal = co_await coio::test::read_until_line(&cli.out, "no_renegotiation");
        CHECK(refusal.find("<<< TLS 1.2, Alert") == 0);
        (void)co_await cli.out.read(-1);
        (void)cli.wait();
        co_return std::vector<std::string>{};
    }
};

TEST_CASE("a renegotiation attempt is refused and the server goes on", "[tls][hostile]") {
    coio::test::reports reps;
    run_clean(coio::wait_for(against_server(&reps, renegotiation{}, coio::tls_options{}), 30s));
    REQUIRE(reps.messages.size() == 1);
    CHECK(reps.messages[0].find("the handler raised TLS read from 127.0.0.1:") !=
          std::string::npos);
    CHECK(reps.messages[0].find("alert handshake failure") != std::string::npos);
}

// --- certificates the client does not accept ------------------------------------------------

struct rejected {
    std::string client_error;
    coio::tls_errc code{};
    std::vector<std::string> server_reports;
    std::string after; // a client with verify=false is still served
};

coio::task<rejected> connect_to(coio::tls_context_options server_opts, std::string name) {
    rejected out;
    coio::test::reports reps;
    reps.install();
    coio::server srv = co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0,
                                                   server_context(std::move(server_opts)));
    try {
        coio::tls_options o{.server_hostname = name};
        coio::stream_pair p =
            co_await coio::open_connection("127.0.0.1", srv.port(), client_context(), o);
        out.client_error = "connected";
    } catch (const coio::tls_error& e) {
        out.client_error = e.what();
        out.code = static_cast<coio::tls_errc>(e.code().value());
    }
    coio::tls_context_options lax{.verify = false};
    coio::tls_options o{.server_hostname = name};
    auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(), client_context(lax), o);
    w.write("lax\n");
    out.after = co_await r.readline();
    CHECK(!w.tls()->peer_verified);
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    out.server_reports = reps.messages;
    co_return out;
}

void check_rejected(const rejected& r, const std::string& reason) {
    CHECK(r.client_error.find("TLS handshake with 127.0.0.1:") == 0);
    CHECK(r.client_error.find(": certificate verify failed: " + reason) != std::string::npos);
    CHECK(r.code == coio::tls_errc::verify);
    CHECK(r.after == "lax\n");
    // The server hears the client's alert.
    REQUIRE(r.server_reports.size() == 1);
    CHECK(r.server_reports[0].find("TLS handshake from 127.0.0.1:") == 0);
    CHECK(r.server_reports[0].find("alert") != std::string::npos);
}

TEST_CASE("a certificate no trusted CA signed is rejected by the client", "[tls][hostile]") {
    rejected r = run_clean(coio::wait_for(
        connect_to({.cert_file = certs().self_signed_cert, .key_file = certs().self_signed_key},
                   "localhost"),
        30s));
    check_rejected(r, "self-signed certificate");
}

TEST_CASE("an expired certificate is rejected by the client", "[tls][hostile]") {
    rejected r = run_clean(coio::wait_for(
        connect_to({.cert_file = certs().expired_cert, .key_file = certs().expired_key},
                   "localhost"),
        30s));
    check_rejected(r, "certificate has expired");
}

TEST_CASE("a certificate for another name is rejected by the client", "[tls][hostile]") {
    rejected r = run_clean(coio::wait_for(
        connect_to({.cert_file = certs().wrong_host_cert, .key_file = certs().wrong_host_key},
                   "localhost"),
        30s));
    check_rejected(r, "hostname mismatch");
}

TEST_CASE("a certificate without the server's IP address is rejected by the client",
          "[tls][hostile]") {
    rejected r = run_clean(coio::wait_for(connect_to({}, "127.0.0.2"), 30s));
    check_rejected(r, "IP address mismatch");
}

// --- a client without the certificate the server requires ---------------------------------

coio::task<std::string> no_client_certificate(coio::test::reports* reps) {
    reps->install();
    coio::tls_context_options so{.ca_file = certs().ca,
                                 .client_auth = coio::tls_client_auth::required};
    coio::server srv =
        co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0, server_context(so));
    std::string client_saw;
    try {
        // TLS 1.3: the client's handshake is done before the server checks.
        auto [r, w] = co_await coio::open_connection("127.0.0.1", srv.port(), client_context());
        w.write("x\n");
        std::string line = co_await r.readline();
        client_saw = "read '" + line + "'";
    } catch (const coio::tls_error& e) {
        client_saw = e.what();
    }
    srv.close();
    co_await srv.wait_closed();
    co_return client_saw;
}

TEST_CASE("a client without the required certificate is refused by the server", "[tls][hostile]") {
    coio::test::reports reps;
    std::string client_saw = run_clean(coio::wait_for(no_client_certificate(&reps), 30s));
    CHECK(client_saw.find("TLS read from 127.0.0.1:") == 0);
    CHECK(client_saw.find("certificate required") != std::string::npos);
    REQUIRE(reps.messages.size() == 1);
    CHECK(reps.messages[0].find("peer did not return a certificate") != std::string::npos);
}

} // namespace
