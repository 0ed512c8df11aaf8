// echo_pattern.hpp — the deterministic payload the load generator sends and checks.
//
// Request `seq` on connection `conn` is a run of bytes from a fixed 64 KiB pseudo-random
// table, starting at a position hashed from (conn, seq). So both ends of the check can
// rebuild any byte without storing what was sent, echoes swapped between connections or
// requests are caught (their windows start elsewhere), and sending or checking is a memcpy
// or memcmp, cheap enough not to slow the load down. The table is stored twice in a row so
// a window of up to 64 KiB is always one contiguous span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace bench {

class echo_pattern {
public:
    static constexpr std::size_t k_period = std::size_t{1} << 16;

    echo_pattern() : m_table(std::make_unique<unsigned char[]>(2 * k_period)) {
        std::uint64_t state = 0x636f696f2d62656eULL; // fixed seed: both ends agree
        for (std::size_t i = 0; i < k_period; i += 8) {
            std::uint64_t r = splitmix64(state);
            for (std::size_t b = 0; b < 8; ++b) {
                m_table[i + b] = static_cast<unsigned char>(r >> (8 * b));
            }
        }
        for (std::size_t i = 0; i < k_period; ++i) {
            m_table[k_period + i] = m_table[i];
        }
    }

    // Pointer to byte `off` of request (conn, seq); `avail` gets how many of the following
    // bytes are contiguous there (always >= 64 KiB).
    const unsigned char* at(std::uint64_t conn, std::uint64_t seq, std::uint64_t off,
                            std::size_t& avail) const {
        std::uint64_t key = (conn << 40) ^ seq;
        std::size_t pos = static_cast<std::size_t>((splitmix64(key) + off) & (k_period - 1));
        avail = 2 * k_period - pos;
        return m_table.get() + pos;
    }

private:
    // splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed 64-bit generator.
    static std::uint64_t splitmix64(std::uint64_t& state) {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    std::unique_ptr<unsigned char[]> m_table;
};

} // namespace bench
