// log_collector/stats.cpp - status line, stats line, summary (stats.hpp).
#include "stats.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace logcollect {

namespace {

std::string fmt(const char* f, double v) {
    std::array<char, 64> buf{};
    int n = std::snprintf(buf.data(), buf.size(), f, v);
    return {buf.data(), static_cast<std::size_t>(n)};
}

std::string num(std::uint64_t v) {
    return std::to_string(v);
}

} // namespace

void add_to(totals& t, const source_stats& s) {
    t.lines += s.lines;
    t.bytes += s.bytes;
    t.reconnects += s.reconnects;
    t.errors += s.errors;
    t.pieces += s.pieces;
    t.cut_lines += s.cut_lines;
}

void add_to(source_stats& into, const source_stats& s) {
    into.lines += s.lines;
    into.bytes += s.bytes;
    into.pieces += s.pieces;
    into.acks += s.acks;
    into.reconnects += s.reconnects;
    into.errors += s.errors;
    into.cut_lines += s.cut_lines;
}

totals sum(const std::deque<source_stats>& sources, const source_stats* push) {
    totals t;
    for (const source_stats& s : sources) {
        add_to(t, s);
    }
    if (push != nullptr) {
        add_to(t, *push);
    }
    return t;
}

std::string human_bytes(double n) {
    static constexpr std::array<const char*, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
    std::size_t u = 0;
    while (n >= 1024.0 && u + 1 < units.size()) {
        n /= 1024.0;
        ++u;
    }
    return fmt(u == 0 ? "%.0f " : "%.1f ", n) + units[u];
}

std::string seconds_text(std::chrono::milliseconds t) {
    return fmt("%g s", static_cast<double>(t.count()) / 1000);
}

void console::message(std::string_view text) {
    const std::lock_guard<std::mutex> hold(m_mutex);
    if (m_shown) {
        std::fputs("\r\033[K", stderr);
        m_shown = false;
    }
    std::fprintf(stderr, "coio-logcollect: %.*s\n", static_cast<int>(text.size()), text.data());
    std::fflush(stderr);
}

void console::status(std::string_view text) {
    const std::lock_guard<std::mutex> hold(m_mutex);
    if (!m_live) {
        return;
    }
    std::fprintf(stderr, "\r\033[K%.*s", static_cast<int>(text.size()), text.data());
    std::fflush(stderr);
    m_shown = true;
}

void console::clear_status() {
    const std::lock_guard<std::mutex> hold(m_mutex);
    if (m_shown) {
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
        m_shown = false;
    }
}

rate_meter::rates rate_meter::sample(const totals& t) {
    const clock::time_point now = clock::now();
    rates r;
    if (m_started) {
        const double dt = std::chrono::duration<double>(now - m_last).count();
        if (dt > 0) {
            r.lines_per_s = static_cast<double>(t.lines - m_prev.lines) / dt;
            r.bytes_per_s = static_cast<double>(t.bytes - m_prev.bytes) / dt;
        }
    }
    m_started = true;
    m_last = now;
    m_prev = t;
    return r;
}

std::string status_text(std::size_t connected, std::size_t total, const totals& t,
                        const rate_meter::rates& r, std::size_t push_connections) {
    std::string s = "sources " + num(connected) + "/" + num(total) + " connected";
    if (push_connections > 0) {
        s += " + " + num(push_connections) + " push";
    }
    s += " | " + fmt("%.0f", r.lines_per_s) + " lines/s | " + human_bytes(r.bytes_per_s) + "/s | " +
         num(t.lines) + " lines, " + human_bytes(static_cast<double>(t.bytes)) + " | " +
         num(t.reconnects) + " reconnects";
    if (t.errors > 0) {
        s += " | " + num(t.errors) + " errors";
    }
    return s;
}

void print_summary(std::FILE* out, const std::deque<source_stats>& sources,
                   const source_stats* push, std::size_t max_rows, double seconds,
                   const std::string& output_name) {
    std::vector<const source_stats*> rows;
    rows.reserve(sources.size() + 1);
    for (const source_stats& s : sources) {
        rows.push_back(&s);
    }
    if (push != nullptr) {
        rows.push_back(push);
    }
    std::size_t width = 6;
    for (const source_stats* s : rows) {
        width = std::max(width, s->name.size());
    }
    const std::size_t hidden = rows.size() > max_rows ? rows.size() - max_rows : 0;
    if (hidden > 0) {
        // Show the troubled ones: most errors + reconnects first, stable order.
        std::stable_sort(rows.begin(), rows.end(),
                         [](const source_stats* a, const source_stats* b) {
                             return a->errors + a->reconnects > b->errors + b->reconnects;
                         });
        rows.resize(max_rows);
    }
    const int w = static_cast<int>(width);
    std::fprintf(out, "%-*s %10s %12s %10s %7s %7s\n", w, "source", "lines", "bytes", "reconnects",
                 "errors", "cut");
    for (const source_stats* s : rows) {
        std::fprintf(out, "%-*s %10llu %12llu %10llu %7llu %7llu\n", w, s->name.c_str(),
                     static_cast<unsigned long long>(s->lines),
                     static_cast<unsigned long long>(s->bytes),
                     static_cast<unsigned long long>(s->reconnects),
                     static_cast<unsigned long long>(s->errors),
                     static_cast<unsigned long long>(s->cut_lines));
    }
    if (hidden > 0) {
        std::fprintf(out, "(%zu more sources not shown; the total includes them)\n", hidden);
    }
    const totals t = sum(sources, push);
    std::fprintf(out, "%-*s %10llu %12llu %10llu %7llu %7llu\n", w, "total",
                 static_cast<unsigned long long>(t.lines), static_cast<unsigned long long>(t.bytes),
                 static_cast<unsigned long long>(t.reconnects),
                 static_cast<unsigned long long>(t.errors),
                 static_cast<unsigned long long>(t.cut_lines));
    std::fprintf(out, "%llu lines (%llu over-long-line pieces) to %s in %.1f s\n",
                 static_cast<unsigned long long>(t.lines),
                 static_cast<unsigned long long>(t.pieces), output_name.c_str(), seconds);
    std::fflush(out);
}

} // namespace logcollect
