// tests/tls/tls_support.hpp - what the TLS tests share: certificates made at
// test time with the openssl command (never committed), peers that are other
// programs (openssl s_server / s_client, python3) started and stopped by PID,
// and a line echo handler.
#pragma once

#include "support/support.hpp"

#include <coio/coio.hpp>

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace coio::test {

// Made once per test process in a fresh temporary directory (removed at
// exit): a CA, and PEM files signed by it or not. Every leaf has an EC P-256
// key. Throws std::runtime_error naming the openssl command that failed.
struct test_certs {
    std::string dir;
    std::string ca;                                // the CA certificate
    std::string server_cert, server_key;           // localhost, 127.0.0.1, ::1; by the CA
    std::string expired_cert, expired_key;         // localhost, by the CA, valid 2020-01-01..02
    std::string wrong_host_cert, wrong_host_key;   // wrong.example only, by the CA
    std::string self_signed_cert, self_signed_key; // localhost, signed by itself
    std::string client_cert, client_key;           // "coio test client", clientAuth, by the CA
};
const test_certs& certs();

// Reads a whole file (throws std::runtime_error).
std::string read_text(const std::string& path);

// Server context from the CA-signed localhost certificate, and a client
// context trusting the CA. (No default arguments: g++ 12 destroys a
// defaulted aggregate twice inside a co_await expression, see tls.hpp.)
coio::tls_context server_context(coio::tls_context_options extra);
coio::tls_context client_context(coio::tls_context_options extra);
coio::tls_context server_context();
coio::tls_context client_context();

// A program run with its stdin and stdout connected to coio streams (a Unix
// socket pair) and its stderr to a file, or to stdout too; killed (SIGKILL)
// and reaped by PID when the object goes, if it was not waited for.
class child_process {
public:
    enum class stderr_to : unsigned char { file, out };
    // Throws std::runtime_error if the program cannot be started.
    explicit child_process(std::vector<std::string> argv, stderr_to err = stderr_to::file);
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process();

    coio::stream_reader out; // the child's stdout
    coio::stream_writer in;  // the child's stdin

    [[nodiscard]] pid_t pid() const noexcept { return m_pid; }
    // Send SIGTERM (if still running).
    void terminate() noexcept;
    // Reap the child (blocks: call once it exited or was told to) and return
    // its exit code, or 128 + signal.
    int wait() noexcept;
    // What it wrote to stderr so far.
    [[nodiscard]] std::string stderr_text() const;

private:
    pid_t m_pid = -1;
    std::string m_err_path;
};

// Read lines from `r` until one contains `needle`; return that line. Throws
// std::runtime_error at EOF (with the lines seen).
coio::task<std::string> read_until_line(coio::stream_reader* r, std::string needle);

// The port in s_server's "ACCEPT 127.0.0.1:PORT" line.
std::uint16_t accept_port(const std::string& line);

// Echo lines until EOF, then close.
coio::task<> echo_lines(coio::stream_reader r, coio::stream_writer w);

// Collects the loop's exception reports (set_exception_handler) so tests can
// check what a server reported.
struct reports {
    std::vector<std::string> messages;
    void install();
};

} // namespace coio::test
