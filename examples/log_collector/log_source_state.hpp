// log_collector/log_source_state.hpp - what log_source knows about each of its
// source instances, the lines it sends, and the --state file.
//
// Lines are generated, not stored: line `seq` of instance NAME is
//   "NAME SEQ PAYLOAD\n"
// with PAYLOAD --line-bytes lowercase letters that depend only on (--seed,
// seq) - see payload(). So a restarted log_source can send any line again,
// and a checker (scripts/demo, tests/logcollect) can verify every byte.
//
// Acknowledgements are in order (one "ACK\n" per line, on the connection the
// line was sent on), so the state of an instance is a watermark: lines 1..acked
// are delivered. A new connection starts again at acked + 1: every line sent
// before and not acknowledged is sent again ("resent").
//
// --state FILE keeps the watermarks across restarts (even SIGKILL): it is
// rewritten (temporary file, fsync, rename) at most every 100 ms while
// something changed, and at exit. After a kill, the lines acknowledged since
// the last save are sent again: duplicates, never gaps.
#pragma once

#include <coio/net/address.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace logsource {
class link;
}

namespace logsource {

struct instance {
    std::string name;
    coio::address bound;
    std::uint64_t acked = 0;       // lines 1..acked are acknowledged
    std::uint64_t sent = 0;        // highest line ever sent complete
    std::uint64_t resent = 0;      // lines sent again on a later connection
    std::uint64_t connections = 0; // accepted
    std::uint64_t drops = 0;       // connections this source dropped on purpose
    std::uint64_t bad_acks = 0;    // answers that were not "ACK", or ACKs for nothing
    std::uint64_t generation = 0;  // the current connection (a new one takes over)
    link* active = nullptr;        // that connection (log_source.cpp)
    bool complete = false;         // all --lines acknowledged
};

// The collector's answers: one line "ACK" per line it wrote. Lines may come
// split anywhere; on_line(bool) is called once per complete line, true for
// exactly "ACK". Only the first max_token bytes of a line are kept, which is
// enough to tell "ACK" from anything else, so a long line costs no memory.
class ack_parser {
public:
    static constexpr std::size_t max_token = 16;

    template <class OnLine>
    void feed(std::string_view bytes, OnLine&& on_line) {
        for (char ch : bytes) {
            if (ch != '\n') {
                if (m_token.size() < max_token) {
                    m_token += ch;
                }
                continue;
            }
            on_line(m_token == "ACK");
            m_token.clear();
        }
    }

private:
    std::string m_token;
};

// PAYLOAD of line `seq`: `bytes` letters a..z from splitmix64(seed, seq).
void append_payload(std::string& out, std::uint64_t seed, std::uint64_t seq, std::size_t bytes);
// The whole line, '\n' included.
void append_line(std::string& out, std::string_view name, std::uint64_t seed, std::uint64_t seq,
                 std::size_t payload_bytes);

// Load watermarks for the instances named in the file (others start at 0).
// A missing file is not an error; an unreadable or malformed one throws
// std::runtime_error naming it.
void load_state(const std::string& path, std::deque<instance>& instances);
// Write all instances durably. Throws std::runtime_error with the errno text.
void save_state(const std::string& path, const std::deque<instance>& instances);

// One JSON line: totals over all instances.
std::string summary_json(std::string_view name, std::uint64_t lines_per_source,
                         const std::deque<instance>& instances);

} // namespace logsource
