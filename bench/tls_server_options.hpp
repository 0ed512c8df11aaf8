// tls_server_options.hpp — the TLS options both TLS echo servers in bench/ take
// (coio_tls_echo, asio_tls_echo), on top of server_common.hpp's contract:
//   --tls-cert FILE --tls-key FILE   PEM certificate chain and private key (required)
//   --tls-version 1.2|1.3            pinned: min = max (default 1.3)
//   --tls-ciphersuites S             TLS 1.3 suites (default TLS_AES_128_GCM_SHA256)
//   --tls-ciphers S                  TLS 1.2 cipher list (default: OpenSSL's)
// loadgen --tls takes the same --tls-version / --tls-ciphersuites / --tls-ciphers, so one
// harness setting pins both sides to the same protocol and cipher.
#pragma once

#include "server_common.hpp"

#include <string>
#include <string_view>

namespace bench {

struct tls_server_options {
    std::string cert_file;
    std::string key_file;
    int version = 13; // 12 or 13
    std::string ciphersuites = "TLS_AES_128_GCM_SHA256";
    std::string ciphers;
};

// parse_server_options plus the options above; `extra` sees what neither knows (a flag
// without value). Exits 2 with usage on a missing or bad value.
inline server_options
parse_tls_server_options(int argc, char** argv, tls_server_options& tls,
                         const std::function<bool(std::string_view)>& extra = {}) {
    std::string* pending = nullptr; // the option whose value comes next
    std::string version = "1.3";
    auto take = [&](std::string_view arg) {
        if (pending != nullptr) {
            *pending = std::string(arg);
            pending = nullptr;
            return true;
        }
        pending = arg == "--tls-cert"           ? &tls.cert_file
                  : arg == "--tls-key"          ? &tls.key_file
                  : arg == "--tls-version"      ? &version
                  : arg == "--tls-ciphersuites" ? &tls.ciphersuites
                  : arg == "--tls-ciphers"      ? &tls.ciphers
                                                : nullptr;
        return pending != nullptr || (extra && extra(arg));
    };
    server_options opts = parse_server_options(argc, argv, take);
    if (pending != nullptr) {
        die_usage(argv[0], "missing value after a --tls-* option");
    }
    if (version != "1.2" && version != "1.3") {
        die_usage(argv[0], "--tls-version wants 1.2 or 1.3");
    }
    tls.version = version == "1.2" ? 12 : 13;
    if (tls.cert_file.empty() || tls.key_file.empty()) {
        die_usage(argv[0], "--tls-cert FILE and --tls-key FILE are required");
    }
    return opts;
}

} // namespace bench
