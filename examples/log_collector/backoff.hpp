// log_collector/backoff.hpp - reconnect delays: exponential, jittered, capped.
//
// The n-th delay after a failure (n = 0, 1, ...) is drawn uniformly from
// [d/2, d] with d = min(max, min * 2^n) ("equal jitter"): it grows quickly
// while a source stays down, never exceeds max, and sources that went down
// together (a restarted host) do not all come back in the same millisecond.
// reset() after a connection that delivered data starts again from min.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace logcollect {

class backoff {
public:
    using duration = std::chrono::milliseconds;

    backoff(duration min, duration max, std::uint64_t seed) noexcept
        : m_min(std::max(min, duration(1))), m_max(std::max(max, m_min)), m_rng(seed) {}

    // The next delay to wait before reconnecting.
    duration next() {
        duration d = m_max;
        if (m_attempt < 40) {
            const auto scaled = m_min.count() * (std::int64_t{1} << m_attempt);
            d = std::min(m_max, duration(scaled));
        }
        ++m_attempt;
        const auto lo = static_cast<std::uint64_t>(d.count() / 2);
        const auto span = static_cast<std::uint64_t>(d.count()) - lo + 1;
        return duration(static_cast<std::int64_t>(lo + random() % span));
    }
    void reset() noexcept { m_attempt = 0; }
    [[nodiscard]] unsigned attempts() const noexcept { return m_attempt; }

private:
    // splitmix64: 8 bytes of state per source (a std::mt19937_64 is 2.5 KB,
    // which 10,000 sources would notice).
    std::uint64_t random() noexcept {
        std::uint64_t z = (m_rng += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31U);
    }

    duration m_min;
    duration m_max;
    unsigned m_attempt = 0;
    std::uint64_t m_rng;
};

} // namespace logcollect
