// log_collector/log_source_options.hpp - log_source's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace logsource {

struct config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned ports = 1;
    std::string name = "source";
    std::uint64_t lines = 0; // per instance; 0 = endless
    double rate = 0;         // lines per second per connection; 0 = as fast as possible
    double drop_probability = 0;
    std::size_t line_bytes = 64;
    std::uint64_t seed = 1;
    std::uint64_t window = 1024;
    std::string state_file;
    std::string tls_cert; // --tls-cert / --tls-key: serve over TLS
    std::string tls_key;
};

// Parse argv into cfg. 0: run; 1: done (--help, --list-backends), exit 0;
// 2: usage error (printed), exit 2.
int parse(int argc, char** argv, config& cfg);

} // namespace logsource
