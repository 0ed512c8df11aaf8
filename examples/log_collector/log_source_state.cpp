// log_collector/log_source_state.cpp - line generation and the --state file
// (log_source_state.hpp).
#include "log_source_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace logsource {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

} // namespace

// Python equivalent (tests/logcollect/lcsupport.py, payload()):
//   x = (seed * 0x9E3779B97F4A7C15 + seq) mod 2^64; then per 8 letters one
//   splitmix64 output z, letter k = 'a' + ((z >> 8k) & 0xff) % 26.
void append_payload(std::string& out, std::uint64_t seed, std::uint64_t seq, std::size_t bytes) {
    std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + seq;
    std::size_t i = 0;
    while (i < bytes) {
        std::uint64_t z = splitmix64(x);
        for (unsigned k = 0; k < 8 && i < bytes; ++k, ++i) {
            out += static_cast<char>('a' + ((z >> (8U * k)) & 0xFFU) % 26U);
        }
    }
}

void append_line(std::string& out, std::string_view name, std::uint64_t seed, std::uint64_t seq,
                 std::size_t payload_bytes) {
    out.append(name);
    out += ' ';
    out += std::to_string(seq);
    out += ' ';
    append_payload(out, seed, seq, payload_bytes);
    out += '\n';
}

void load_state(const std::string& path, std::deque<instance>& instances) {
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT) {
            return;
        }
        fail("cannot read state file " + path);
    }
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream fields(line);
        std::string name;
        std::uint64_t acked = 0;
        std::uint64_t sent = 0;
        std::uint64_t resent = 0;
        std::uint64_t connections = 0;
        std::uint64_t drops = 0;
        if (!(fields >> name >> acked >> sent >> resent >> connections >> drops)) {
            throw std::runtime_error("state file " + path + ": malformed line '" + line + "'");
        }
        for (instance& i : instances) {
            if (i.name == name) {
                i.acked = acked;
                i.sent = sent;
                i.resent = resent;
                i.connections = connections;
                i.drops = drops;
            }
        }
    }
}

void save_state(const std::string& path, const std::deque<instance>& instances) {
    std::string text = "# log_source state: name acked sent resent connections drops\n";
    for (const instance& i : instances) {
        text += i.name + ' ' + std::to_string(i.acked) + ' ' + std::to_string(i.sent) + ' ' +
                std::to_string(i.resent) + ' ' + std::to_string(i.connections) + ' ' +
                std::to_string(i.drops) + '\n';
    }
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail("cannot write state file " + tmp);
    }
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno != EINTR) {
            ::close(fd);
            fail("write " + tmp);
        }
        done += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        fail("fsync " + tmp);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        fail("rename " + tmp + " to " + path);
    }
}

std::string summary_json(std::string_view name, std::uint64_t lines_per_source,
                         const std::deque<instance>& instances) {
    std::uint64_t acked = 0;
    std::uint64_t sent = 0;
    std::uint64_t resent = 0;
    std::uint64_t connections = 0;
    std::uint64_t drops = 0;
    std::uint64_t bad = 0;
    for (const instance& i : instances) {
        acked += i.acked;
        sent += i.sent;
        resent += i.resent;
        connections += i.connections;
        drops += i.drops;
        bad += i.bad_acks;
    }
    // name contains no characters that need escaping (checked at startup).
    return "{\"name\":\"" + std::string(name) +
           "\",\"sources\":" + std::to_string(instances.size()) +
           ",\"lines\":" + std::to_string(lines_per_source) + ",\"sent\":" + std::to_string(sent) +
           ",\"acked\":" + std::to_string(acked) + ",\"resent\":" + std::to_string(resent) +
           ",\"connections\":" + std::to_string(connections) +
           ",\"drops\":" + std::to_string(drops) + ",\"bad_acks\":" + std::to_string(bad) + "}";
}

} // namespace logsource
