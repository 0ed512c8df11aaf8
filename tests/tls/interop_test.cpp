// tests/tls/interop_test.cpp - coio's TLS against peers nobody here wrote:
// openssl s_server and s_client (OpenSSL's own applications) and Python's
// ssl module under asyncio (tls_peer.py), both directions, start_tls
// included, TLS 1.2 and 1.3, ALPN, key updates, closes without close_notify.
// The peers run as child processes on 127.0.0.1 with ports they report, and
// are stopped by PID.
#include "tls/tls_support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::certs;
using coio::test::child_process;
using coio::test::client_context;
using coio::test::read_until_line;
using coio::test::run_clean;
using coio::test::server_context;

namespace {

const std::string peer_py = COIO_TEST_SOURCE_DIR "/tls/tls_peer.py";

// --- coio client, openssl s_server ---------------------------------------------------------

struct s_server_result {
    std::string reply;
    coio::tls_info info;
    int exit_code = -1;
};

// s_server -rev answers each line reversed.
coio::task<s_server_result> against_s_server(std::vector<std::string> server_args,
                                             coio::tls_context_options client_opts) {
    std::vector<std::string> argv = {"openssl", "s_server",          "-accept", "127.0.0.1:0",
                                     "-cert",   certs().server_cert, "-key",    certs().server_key,
                                     "-rev",    "-naccept",          "1"};
    argv.insert(argv.end(), server_args.begin(), server_args.end());
    child_process srv(argv);
    const std::string accept = co_await read_until_line(&srv.out, "ACCEPT");
    s_server_result out;
    {
        coio::tls_options o{.server_hostname = "localhost"};
        auto [r, w] = co_await coio::open_connection("127.0.0.1", coio::test::accept_port(accept),
                                                     client_context(std::move(client_opts)), o);
        w.write("hello s_server\n");
        out.reply = co_await r.readline();
        out.info = w.tls().value();
        w.close();
        co_await w.wait_closed();
    }
    std::string rest = co_await srv.out.read(-1); // s_server exits after its one connection
    out.exit_code = srv.wait();
    if (out.exit_code != 0) {
        WARN("s_server: " << rest << srv.stderr_text());
    }
    co_return out;
}

TEST_CASE("a coio client talks TLS 1.3 to openssl s_server", "[tls][interop]") {
    s_server_result r = run_clean(coio::wait_for(against_s_server({}, {}), 30s));
    CHECK(r.reply == "revres_s olleh\n");
    CHECK(r.info.version == "TLSv1.3");
    CHECK(r.info.peer_verified);
    CHECK(r.exit_code == 0);
}

TEST_CASE("a coio client talks TLS 1.2 to openssl s_server", "[tls][interop]") {
    s_server_result r = run_clean(coio::wait_for(against_s_server({"-tls1_2"}, {}), 30s));
    CHECK(r.reply == "revres_s olleh\n");
    CHECK(r.info.version == "TLSv1.2");
    CHECK(r.exit_code == 0);
}

TEST_CASE("ALPN is negotiated with openssl s_server", "[tls][interop]") {
    s_server_result r = run_clean(
        coio::wait_for(against_s_server({"-alpn", "h2,http/1.1"}, {.alpn = {"http/1.1"}}), 30s));
    CHECK(r.reply == "revres_s olleh\n");
    CHECK(r.info.alpn == "http/1.1");
}

// s_server killed with SIGKILL: the kernel closes the connection with a FIN,
// no close_notify ever comes.
coio::task<coio::tls_info> s_server_killed() {
    child_process srv({"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
                       certs().server_cert, "-key", certs().server_key, "-rev", "-naccept", "1"});
    const std::string accept = co_await read_until_line(&srv.out, "ACCEPT");
    coio::tls_options o{.server_hostname = "localhost"};
    auto [r, w] = co_await coio::open_connection("127.0.0.1", coio::test::accept_port(accept),
                                                 client_context(), o);
    w.write("ab\n");
    std::string back = co_await r.readline();
    CHECK(back == "ba\n");
    ::kill(srv.pid(), SIGKILL);
    (void)srv.wait();
    std::string end = co_await r.read(); // the reader reports the end as EOF
    CHECK(end.empty());
    CHECK(r.at_eof());
    coio::tls_info info = w.tls().value();
    w.close();
    co_await w.wait_closed();
    co_return info;
}

TEST_CASE("a peer that closes without close_notify gives EOF marked as truncated",
          "[tls][interop]") {
    coio::tls_info info = run_clean(coio::wait_for(s_server_killed(), 30s));
    CHECK(info.truncated);
    CHECK(!info.close_notify_received);
}

// --- openssl s_client, coio server ---------------------------------------------------------

struct recording_echo {
    std::vector<coio::tls_info>* infos;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        for (;;) {
            std::string line = co_await r.readline();
            if (line.empty()) {
                break;
            }
            w.write(line);
            co_await w.drain();
        }
        infos->push_back(w.tls().value());
        w.close();
        co_await w.wait_closed();
    }
};

struct s_client_result {
    std::vector<std::string> echoed;
    std::vector<coio::tls_info> server_seen;
    int exit_code = -1;
};

// s_client sends `lines` (its commands included, in its interactive mode
// unless -quiet), then its stdin ends; it closes with a close_notify.
coio::task<s_client_result> s_client_to_coio(std::vector<std::string> client_args,
                                             std::vector<std::string> lines,
                                             std::vector<std::string> expect) {
    s_client_result out;
    recording_echo handler{&out.server_seen};
    coio::tls_context_options so{.alpn = {"h2", "http/1.1"}};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0, server_context(so));
    std::vector<std::string> argv = {"openssl",
                                     "s_client",
                                     "-connect",
                                     "127.0.0.1:" + std::to_string(srv.port()),
                                     "-CAfile",
                                     certs().ca,
                                     "-verify_return_error",
                                     "-servername",
                                     "localhost"};
    argv.insert(argv.end(), client_args.begin(), client_args.end());
    argv.emplace_back("-no_ign_eof"); // after -quiet, which turns ign_eof on
    {
        child_process cli(argv);
        for (const std::string& l : lines) {
            cli.in.write(l);
        }
        for (const std::string& e : expect) { // its output may hold session details too
            out.echoed.push_back(co_await read_until_line(&cli.out, e));
        }
        cli.in.write_eof(); // s_client quits at the end of its input
        std::string rest = co_await cli.out.read(-1);
        out.exit_code = cli.wait();
        if (out.exit_code != 0) {
            WARN("s_client: " << rest << cli.stderr_text());
        }
    }
    srv.close();
    co_await srv.wait_closed();
    co_return out;
}

TEST_CASE("openssl s_client talks to a coio TLS server", "[tls][interop]") {
    s_client_result r = run_clean(
        coio::wait_for(s_client_to_coio({"-quiet", "-alpn", "http/1.1"}, {"hello from s_client\n"},
                                        {"hello from s_client"}),
                       30s));
    CHECK(r.echoed == std::vector<std::string>{"hello from s_client\n"});
    CHECK(r.exit_code == 0);
    REQUIRE(r.server_seen.size() == 1);
    CHECK(r.server_seen[0].alpn == "http/1.1");
    CHECK(r.server_seen[0].server_name == "localhost");
    CHECK(r.server_seen[0].close_notify_received);
}

TEST_CASE("openssl s_client talks TLS 1.2 to a coio TLS server", "[tls][interop]") {
    s_client_result r = run_clean(
        coio::wait_for(s_client_to_coio({"-quiet", "-tls1_2"}, {"twelve\n"}, {"twelve"}), 30s));
    CHECK(r.exit_code == 0);
    REQUIRE(r.server_seen.size() == 1);
    CHECK(r.server_seen[0].version == "TLSv1.2");
}

// s_client in its interactive mode: "k" makes it send a KeyUpdate, "K" one
// that asks for the server's in return. OpenSSL sends that answer right
// before its next application data (RFC 8446 4.6.3), so -msg shows it
// arriving ("<<< ... KeyUpdate") ahead of the next echo. s_client reads its
// input in whole buffers, so each command goes alone, once the previous line
// was handled.
coio::task<s_client_result> key_updates() {
    s_client_result out;
    recording_echo handler{&out.server_seen};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0, server_context());
    {
        child_process cli({"openssl", "s_client", "-connect",
                           "127.0.0.1:" + std::to_string(srv.port()), "-CAfile", certs().ca,
                           "-verify_return_error", "-servername", "localhost", "-no_ign_eof",
                           "-msg"},
                          child_process::stderr_to::out);
        const std::vector<std::pair<std::string, std::string>> steps = {
            {"alpha-1\n", "alpha-1"},
            {"k\n", ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"},
            {"beta-2\n", "beta-2"},
            {"K\n", ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"},
            {"gamma-3\n", "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"}, // the answer
            {"", "gamma-3"}};
        for (const auto& [send, expect] : steps) {
            if (!send.empty()) {
                cli.in.write(send);
            }
            out.echoed.push_back(co_await read_until_line(&cli.out, expect));
        }
        cli.in.write_eof();
        std::string rest = co_await cli.out.read(-1);
        out.exit_code = cli.wait();
        if (out.exit_code != 0) {
            WARN("s_client: " << rest);
        }
    }
    srv.close();
    co_await srv.wait_closed();
    co_return out;
}

TEST_CASE("key updates from openssl s_client, requested ones answered, keep the stream going",
          "[tls][interop]") {
    s_client_result r = run_clean(coio::wait_for(key_updates(), 30s));
    REQUIRE(r.echoed.size() == 6);
    CHECK(r.echoed[0] == "alpha-1\n");
    CHECK(r.echoed[2] == "beta-2\n");
    CHECK(r.echoed[5] == "gamma-3\n");
    CHECK(r.exit_code == 0);
    REQUIRE(r.server_seen.size() == 1);
    CHECK(r.server_seen[0].close_notify_received);
}

// --- Python's ssl and asyncio ----------------------------------------------------------------

// Plaintext until "STARTTLS", then the upgrade and recording_echo.
struct starttls_echo {
    recording_echo inner;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        std::string cmd = co_await r.readline();
        REQUIRE(cmd == "STARTTLS\n");
        w.write("GO\n");
        co_await w.start_tls(server_context());
        co_await inner(std::move(r), std::move(w));
    }
};

coio::task<std::string> python_client(bool starttls, bool abort_it,
                                      std::vector<coio::tls_info>* server_seen) {
    recording_echo handler{server_seen};
    starttls_echo upgrading{handler};
    coio::server srv;
    if (starttls) {
        srv = co_await coio::start_server(upgrading, "127.0.0.1", 0);
    } else {
        srv = co_await coio::start_server(handler, "127.0.0.1", 0, server_context());
    }
    std::vector<std::string> argv = {
        "python3", peer_py, "client", "--port", std::to_string(srv.port()), "--ca", certs().ca};
    if (starttls) {
        argv.emplace_back("--starttls");
    }
    if (abort_it) {
        argv.emplace_back("--abort");
    }
    std::string out;
    {
        child_process py(argv);
        out = co_await py.out.read(-1);
        const int rc = py.wait();
        if (rc != 0) {
            WARN("tls_peer.py: " << py.stderr_text());
        }
        CHECK(rc == 0);
    }
    srv.close();
    co_await srv.wait_closed();
    co_return out;
}

TEST_CASE("python's ssl client talks to a coio TLS server", "[tls][interop]") {
    std::vector<coio::tls_info> seen;
    std::string out = run_clean(coio::wait_for(python_client(false, false, &seen), 30s));
    CHECK(out == "ok 3 TLSv1.3\n");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].close_notify_received);
}

TEST_CASE("python's asyncio start_tls upgrades to a coio server's start_tls", "[tls][interop]") {
    std::vector<coio::tls_info> seen;
    std::string out = run_clean(coio::wait_for(python_client(true, false, &seen), 30s));
    CHECK(out == "ok 3 TLSv1.3\n");
    REQUIRE(seen.size() == 1);
}

TEST_CASE("a python client that aborts is a truncated EOF on the coio server", "[tls][interop]") {
    std::vector<coio::tls_info> seen;
    std::string out = run_clean(coio::wait_for(python_client(false, true, &seen), 30s));
    CHECK(out == "ok 1 TLSv1.3\n");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].truncated);
    CHECK(!seen[0].close_notify_received);
}

struct python_server_result {
    std::vector<std::string> lines;
    std::string done;
    coio::tls_info info;
};

coio::task<python_server_result> python_server(bool starttls, bool abort_it) {
    std::vector<std::string> argv = {"python3",           peer_py, "server",          "--cert",
                                     certs().server_cert, "--key", certs().server_key};
    if (starttls) {
        argv.emplace_back("--starttls");
    }
    if (abort_it) {
        argv.emplace_back("--abort");
    }
    child_process py(argv);
    const std::string port_line = co_await read_until_line(&py.out, "port ");
    const auto port = static_cast<std::uint16_t>(std::stoul(port_line.substr(5)));
    python_server_result out;
    {
        coio::tls_options o{.server_hostname = "localhost"};
        coio::stream_pair p;
        if (starttls) {
            p = co_await coio::open_connection("127.0.0.1", port);
            p.writer.write("STARTTLS\n");
            std::string go = co_await p.reader.readline();
            REQUIRE(go == "GO\n");
            co_await p.writer.start_tls(client_context(), o);
        } else {
            p = co_await coio::open_connection("127.0.0.1", port, client_context(), o);
        }
        if (abort_it) {
            out.lines.push_back(co_await p.reader.readline());
            out.lines.push_back(co_await p.reader.readline()); // the EOF
        } else {
            for (int i = 0; i < 3; ++i) {
                const std::string line = "coio line " + std::to_string(i) + "\n";
                p.writer.write(line);
                out.lines.push_back(co_await p.reader.readline());
            }
            p.writer.write_eof(); // close_notify + FIN: python echoes until EOF
            std::string rest = co_await p.reader.read(-1);
            CHECK(rest.empty());
        }
        out.info = p.writer.tls().value();
        p.writer.close();
        co_await p.writer.wait_closed();
    }
    out.done = co_await py.out.read(-1);
    const int rc = py.wait();
    if (rc != 0) {
        WARN("tls_peer.py: " << py.stderr_text());
    }
    CHECK(rc == 0);
    co_return out;
}

TEST_CASE("a coio client talks to python's asyncio ssl server", "[tls][interop]") {
    python_server_result r = run_clean(coio::wait_for(python_server(false, false), 30s));
    CHECK(r.lines == std::vector<std::string>{"coio line 0\n", "coio line 1\n", "coio line 2\n"});
    CHECK(r.done == "done 3 TLSv1.3\n");
    CHECK(r.info.close_notify_received);
    CHECK(!r.info.truncated);
}

TEST_CASE("a coio client's start_tls upgrades to python's asyncio start_tls", "[tls][interop]") {
    python_server_result r = run_clean(coio::wait_for(python_server(true, false), 30s));
    CHECK(r.lines.size() == 3);
    CHECK(r.done == "done 3 TLSv1.3\n");
}

TEST_CASE("a python server that aborts is a truncated EOF on the coio client", "[tls][interop]") {
    python_server_result r = run_clean(coio::wait_for(python_server(false, true), 30s));
    CHECK(r.lines == std::vector<std::string>{"partial\n", ""});
    CHECK(r.info.truncated);
}

} // namespace
