// log_collector/record_format.hpp - how one received line becomes one output
// record, in the plain or the JSON format.
//
// plain:  SOURCE<TAB>TEXT\n
// json:   {"seq":N,"time":"2025-01-31T12:00:00.123Z","source":"SOURCE","line":"TEXT"}\n
//
// TEXT is the line without its '\n', made valid UTF-8 (utf8.hpp). In plain
// format an LF inside TEXT (possible only in an octet-counted syslog frame)
// is written as U+2424 (a visible "NL" symbol) so that one record stays one
// line; JSON escapes it.
//
// Over-long lines (longer than --max-line) are written as several records,
// in order, each a "piece" (see line_assembler.hpp for the policy):
//   plain: every piece but the last has SOURCE+ in the first column; the last
//          has plain SOURCE. Concatenating the TEXT of the SOURCE+ records and
//          the SOURCE record that follows them gives the line.
//   json:  "part":K (1-based) and "more":true|false are added.
// If the connection ends after some pieces of a line were written but before
// its last piece, an "aborted" record says so (the source will send the whole
// line again, since it was never acknowledged):
//   plain: SOURCE!<TAB>           json: ..."line":"","aborted":true,"parts":K
//
// When the output file ends inside a record at startup (an earlier run was
// killed inside a write), a '\n' and a "torn record" marker come first:
//   plain: coio-logcollect!<TAB>torn record above (N bytes)
//   json:  {"seq":..,"time":..,"source":"coio-logcollect","line":"","torn":N}
// The line before a marker is not a record (output_sink.hpp).
//
// seq numbers the records this collector run wrote (from 1); time is when the
// line was received (UTC, milliseconds). Records from push connections (syslog
// over TCP) carry "framing":"octet"|"lf" in JSON.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace logcollect {

enum class output_format : std::uint8_t { plain, json };

enum class record_kind : std::uint8_t {
    whole,   // a complete line
    part,    // a piece of an over-long line; more pieces follow
    last,    // the last piece of an over-long line (completes it)
    aborted, // the connection ended in the middle of a line that had pieces out
};

struct record_meta {
    std::string_view source;
    record_kind kind = record_kind::whole;
    std::uint32_t part = 0;        // part, last: piece number; aborted: pieces written
    std::string_view framing = {}; // push mode: "octet" or "lf"
};

class record_formatter {
public:
    explicit record_formatter(output_format f) noexcept : m_format(f) {}
    // Several formatters (one per loop, collector.hpp) numbering the records
    // of one output together: `seq` hands out the numbers (thread-safe); it
    // must outlive this formatter. Records of different loops are written in
    // the order they reach the writer, so seq is unique and from 1 but rises
    // in the file only per loop.
    record_formatter(output_format f, std::atomic<std::uint64_t>* seq) noexcept
        : m_format(f), m_shared_seq(seq) {}

    // Append one record for `text` (raw bytes, no trailing '\n') to `out`.
    void append(std::string& out, const record_meta& m, std::string_view text);
    // Append the marker that says the line before it is torn (`torn` bytes).
    void append_torn_marker(std::string& out, std::uint64_t torn);

    // Records this formatter appended.
    [[nodiscard]] std::uint64_t records() const noexcept { return m_records; }
    [[nodiscard]] output_format format() const noexcept { return m_format; }

private:
    void append_plain(std::string& out, const record_meta& m, std::string_view text);
    void append_json(std::string& out, const record_meta& m, std::string_view text);
    const std::string& timestamp();
    void next_seq() noexcept;

    output_format m_format;
    std::atomic<std::uint64_t>* m_shared_seq = nullptr;
    std::uint64_t m_seq = 0; // the record being appended
    std::uint64_t m_records = 0;
    std::string m_scratch; // the sanitised text, reused
    std::string m_time;    // cached ISO 8601 text for m_time_ms
    std::int64_t m_time_ms = -1;
};

// The source column of the torn-record marker.
constexpr std::string_view marker_source = "coio-logcollect";

// Append `s` JSON-escaped (no quotes); `s` must be valid UTF-8.
void append_json_escaped(std::string& out, std::string_view s);

} // namespace logcollect
