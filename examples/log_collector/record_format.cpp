// log_collector/record_format.cpp - plain and JSON records (record_format.hpp).
#include "record_format.hpp"

#include "utf8.hpp"

#include <array>
#include <cstdio>
#include <ctime>

namespace logcollect {

namespace {

constexpr std::string_view newline_symbol = "\xE2\x90\xA4"; // U+2424

void append_uint(std::string& out, std::uint64_t v) {
    std::array<char, 24> buf{};
    int n = std::snprintf(buf.data(), buf.size(), "%llu", static_cast<unsigned long long>(v));
    out.append(buf.data(), static_cast<std::size_t>(n));
}

} // namespace

void append_json_escaped(std::string& out, std::string_view s) {
    static constexpr std::string_view hex = "0123456789abcdef";
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20U && c != '"' && c != '\\') {
            continue;
        }
        out.append(s.substr(run, i - run));
        run = i + 1;
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            out += "\\u00";
            out += hex[c >> 4U];
            out += hex[c & 0xFU];
            break;
        }
    }
    out.append(s.substr(run));
}

void record_formatter::next_seq() noexcept {
    ++m_records;
    m_seq = m_shared_seq != nullptr ? m_shared_seq->fetch_add(1, std::memory_order_relaxed) + 1
                                    : m_records;
}

void record_formatter::append(std::string& out, const record_meta& m, std::string_view text) {
    next_seq();
    m_scratch.clear();
    append_utf8_sanitized(m_scratch, text);
    if (m_format == output_format::json) {
        append_json(out, m, m_scratch);
    } else {
        append_plain(out, m, m_scratch);
    }
}

void record_formatter::append_torn_marker(std::string& out, std::uint64_t torn) {
    next_seq();
    if (m_format == output_format::plain) {
        out.append(marker_source);
        out += "!\ttorn record above (";
        append_uint(out, torn);
        out += " bytes)\n";
        return;
    }
    out += "{\"seq\":";
    append_uint(out, m_seq);
    out += ",\"time\":\"";
    out += timestamp();
    out += "\",\"source\":\"";
    out.append(marker_source);
    out += "\",\"line\":\"\",\"torn\":";
    append_uint(out, torn);
    out += "}\n";
}

void record_formatter::append_plain(std::string& out, const record_meta& m, std::string_view text) {
    out.append(m.source);
    if (m.kind == record_kind::part) {
        out += '+';
    } else if (m.kind == record_kind::aborted) {
        out += '!';
    }
    out += '\t';
    std::size_t run = 0;
    for (std::size_t i = text.find('\n'); i != std::string_view::npos; i = text.find('\n', run)) {
        out.append(text.substr(run, i - run));
        out.append(newline_symbol);
        run = i + 1;
    }
    out.append(text.substr(run));
    out += '\n';
}

void record_formatter::append_json(std::string& out, const record_meta& m, std::string_view text) {
    out += "{\"seq\":";
    append_uint(out, m_seq);
    out += ",\"time\":\"";
    out += timestamp();
    out += "\",\"source\":\"";
    append_json_escaped(out, m.source);
    out += "\",\"line\":\"";
    append_json_escaped(out, text);
    out += '"';
    switch (m.kind) {
    case record_kind::whole:
        break;
    case record_kind::part:
    case record_kind::last:
        out += ",\"part\":";
        append_uint(out, m.part);
        out += m.kind == record_kind::part ? ",\"more\":true" : ",\"more\":false";
        break;
    case record_kind::aborted:
        out += ",\"aborted\":true,\"parts\":";
        append_uint(out, m.part);
        break;
    }
    if (!m.framing.empty()) {
        out += ",\"framing\":\"";
        out.append(m.framing);
        out += '"';
    }
    out += "}\n";
}

const std::string& record_formatter::timestamp() {
    using namespace std::chrono;
    const auto now = time_point_cast<milliseconds>(system_clock::now());
    const std::int64_t ms = now.time_since_epoch().count();
    if (ms == m_time_ms) {
        return m_time;
    }
    m_time_ms = ms;
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::array<char, 40> buf{};
    int n = std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec, static_cast<int>(ms % 1000));
    m_time.assign(buf.data(), static_cast<std::size_t>(n));
    return m_time;
}

} // namespace logcollect
