// log_collector/stats.hpp - counters per source, the live status line, the
// periodic stats line and the summary table.
//
// On a terminal (stderr is a tty, and the records do not go to that same
// terminal) a one-line status is redrawn in place with '\r' twice a second;
// messages erase it first and it comes back at the next tick. Elsewhere a
// stats line is printed every --stats-interval seconds. The summary table is
// printed at exit either way.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

namespace logcollect {

struct source_stats {
    std::string name;             // "127.0.0.1:9000", or "push 127.0.0.1:514"
    std::uint64_t lines = 0;      // complete lines written (a split line counts once)
    std::uint64_t bytes = 0;      // bytes received
    std::uint64_t pieces = 0;     // records written for pieces of over-long lines
    std::uint64_t acks = 0;       // "ACK\n" sent (pull sources)
    std::uint64_t reconnects = 0; // connections after the first (push: connections)
    std::uint64_t errors = 0;     // failed connects, resets, truncated frames
    std::uint64_t cut_lines = 0;  // unfinished lines dropped at a disconnect
    bool connected = false;
    bool failing = false; // the last attempt failed (messages once per streak)
};

struct totals {
    std::uint64_t lines = 0;
    std::uint64_t bytes = 0;
    std::uint64_t reconnects = 0;
    std::uint64_t errors = 0;
    std::uint64_t pieces = 0;
    std::uint64_t cut_lines = 0;
};

totals sum(const std::deque<source_stats>& sources, const source_stats* push);
// Add one source's counters (the loops' push rows make one row, main.cpp).
void add_to(totals& t, const source_stats& s);
void add_to(source_stats& into, const source_stats& s);

// stderr, shared by the status line and the messages. Thread-safe: every
// loop may say something (the status line is drawn by loop 0's ticker).
class console {
public:
    explicit console(bool live_status) noexcept : m_live(live_status) {}
    [[nodiscard]] bool live() const noexcept { return m_live; }

    // One message line ("coio-logcollect: " is prepended).
    void message(std::string_view text);
    // Replace the status line (live mode only).
    void status(std::string_view text);
    // Erase the status line, e.g. before the summary.
    void clear_status();

private:
    std::mutex m_mutex;
    bool m_live;
    bool m_shown = false; // guarded by m_mutex
};

// Rates between two samples of the totals.
class rate_meter {
public:
    using clock = std::chrono::steady_clock;
    struct rates {
        double lines_per_s = 0;
        double bytes_per_s = 0;
    };
    rates sample(const totals& t);

private:
    clock::time_point m_last{};
    totals m_prev{};
    bool m_started = false;
};

// "sources 4/4 up | 1,234 lines/s | 56.7 KiB/s | 12,345 lines | 3 reconnects"
std::string status_text(std::size_t connected, std::size_t total, const totals& t,
                        const rate_meter::rates& r, std::size_t push_connections);

// The table printed at exit: one row per source (at most `max_rows`, those
// with errors or reconnects first), then the totals.
void print_summary(std::FILE* out, const std::deque<source_stats>& sources,
                   const source_stats* push, std::size_t max_rows, double seconds,
                   const std::string& output_name);

std::string human_bytes(double n);
// "30 s", "1.5 s"
std::string seconds_text(std::chrono::milliseconds t);

} // namespace logcollect
