// tests/tls/context_test.cpp - tls_context: what it loads, and errors that
// name the file and OpenSSL's reason.
#include "tls/tls_support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace {

using coio::test::certs;

// The message of the tls_error that `f` throws, or "" if it throws none.
template <class F>
std::string tls_error_of(F f, std::string* file = nullptr) {
    try {
        f();
    } catch (const coio::tls_error& e) {
        if (file != nullptr) {
            *file = e.file();
        }
        CHECK(e.code() == coio::tls_errc::config);
        return e.what();
    }
    return {};
}

} // namespace

TEST_CASE("this build has TLS", "[tls]") {
    CHECK(coio::tls_available());
}

TEST_CASE("contexts load PEM files and the same PEM given as text", "[tls]") {
    coio::tls_context a = coio::tls_context::server(
        {.cert_file = certs().server_cert, .key_file = certs().server_key});
    CHECK(a.is_server());
    coio::tls_context b =
        coio::tls_context::server({.cert_pem = coio::test::read_text(certs().server_cert),
                                   .key_pem = coio::test::read_text(certs().server_key)});
    CHECK(b.is_server());
    coio::tls_context c = coio::tls_context::client({.ca_pem = coio::test::read_text(certs().ca)});
    CHECK(!c.is_server());
    coio::tls_context d = coio::tls_context::client(); // the system store
    CHECK(static_cast<bool>(d));
    CHECK(!static_cast<bool>(coio::tls_context()));
}

TEST_CASE("a missing certificate file is reported with its name and the system's reason", "[tls]") {
    std::string file;
    const std::string what = tls_error_of(
        [] {
            (void)coio::tls_context::server(
                {.cert_file = "/nonexistent/cert.pem", .key_file = certs().server_key});
        },
        &file);
    CHECK(what ==
          "tls_context: certificate chain /nonexistent/cert.pem: No such file or directory");
    CHECK(file == "/nonexistent/cert.pem");
}

TEST_CASE("a certificate that is not PEM is reported with OpenSSL's reason", "[tls]") {
    const std::string what = tls_error_of([] {
        (void)coio::tls_context::server(
            {.cert_pem = "not a certificate", .key_file = certs().server_key});
    });
    CHECK(what.find("tls_context: certificate chain (cert_pem): no start line") == 0);
    const std::string ca = tls_error_of([] {
        (void)coio::tls_context::client({.ca_file = certs().server_key}); // a key, no certificate
    });
    CHECK(ca == "tls_context: CA certificates " + certs().server_key + ": no certificate found");
}

TEST_CASE("a key that does not belong to the certificate is refused", "[tls]") {
    std::string file;
    const std::string what = tls_error_of(
        [] {
            (void)coio::tls_context::server(
                {.cert_file = certs().server_cert, .key_file = certs().client_key});
        },
        &file);
    CHECK(what.find("tls_context: private key " + certs().client_key) == 0);
    CHECK(what.find("values mismatch") != std::string::npos);
    CHECK(file == certs().client_key);
}

TEST_CASE("a CA directory that does not exist is reported", "[tls]") {
    const std::string what =
        tls_error_of([] { (void)coio::tls_context::client({.ca_dir = "/nonexistent/cas"}); });
    CHECK(what == "tls_context: CA directory /nonexistent/cas: No such file or directory");
}

TEST_CASE("an unknown cipher suite is reported with OpenSSL's reason", "[tls]") {
    const std::string what = tls_error_of(
        [] { (void)coio::tls_context::client({.ciphersuites = "TLS_NO_SUCH_SUITE"}); });
    CHECK(what.find("tls_context: ciphersuites 'TLS_NO_SUCH_SUITE': ") == 0);
}

TEST_CASE("misuse of the options throws std::invalid_argument", "[tls]") {
    CHECK_THROWS_AS(coio::tls_context::server({}), std::invalid_argument);
    CHECK_THROWS_AS(coio::tls_context::client({.cert_file = certs().client_cert}),
                    std::invalid_argument);
    CHECK_THROWS_AS(coio::tls_context::server({.cert_file = certs().server_cert,
                                               .key_file = certs().server_key,
                                               .client_auth = coio::tls_client_auth::required}),
                    std::invalid_argument);
    CHECK_THROWS_AS(coio::tls_context::client({.alpn = {""}}), std::invalid_argument);
    CHECK_THROWS_AS(coio::tls_context::client({.min_version = coio::tls_version::tls1_3,
                                               .max_version = coio::tls_version::tls1_2}),
                    std::invalid_argument);
    CHECK_THROWS_AS(coio::tls_context::client({.ca_file = certs().ca, .ca_pem = "x"}),
                    std::invalid_argument);
}

TEST_CASE("tls_error is a net_error whose code says what failed", "[tls]") {
    coio::tls_error e(coio::tls_errc::verify, "TLS handshake with x: bad", "bad", "x");
    const coio::net_error& n = e;
    CHECK(std::string(n.what()) == "TLS handshake with x: bad");
    CHECK(e.code() == coio::tls_errc::verify);
    CHECK(e.code().message() == "TLS certificate verification failed");
    CHECK(e.reason() == "bad");
    CHECK(e.peer() == "x");
}
