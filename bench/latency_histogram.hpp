// latency_histogram.hpp — fixed-size, log-linear latency histogram (the HDR histogram idea):
// every power of two is split into 32 equal sub-buckets, so any recorded value is known to
// within ~3 %, from 1 ns up to 2^40 ns (18 minutes), in 1,152 counters (9 KiB).
//
// It is plain data on purpose: histograms from several threads are merged by adding
// counters, and the load generator's child processes send theirs to the parent as raw bytes
// over a pipe (same binary via fork(), so the layout is identical on both ends).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace bench {

class latency_histogram {
public:
    static constexpr unsigned k_sub_bits = 5; // 32 sub-buckets per power of two
    static constexpr unsigned k_max_bits = 40;
    static constexpr std::size_t k_buckets = (k_max_bits - k_sub_bits + 1) << k_sub_bits;

    void record(std::uint64_t ns) {
        ns = std::min<std::uint64_t>(ns, (std::uint64_t{1} << k_max_bits) - 1);
        ++m_counts[index_of(ns)];
        ++m_total;
        m_sum += ns;
        m_max = std::max(m_max, ns);
    }

    void merge(const latency_histogram& other) {
        for (std::size_t i = 0; i < k_buckets; ++i) {
            m_counts[i] += other.m_counts[i];
        }
        m_total += other.m_total;
        m_sum += other.m_sum;
        m_max = std::max(m_max, other.m_max);
    }

    std::uint64_t count() const { return m_total; }
    std::uint64_t max_ns() const { return m_max; }
    double mean_ns() const { return m_total ? static_cast<double>(m_sum) / m_total : 0.0; }

    // Value at quantile q in [0, 1] (0.5 = median): the middle of the bucket holding the
    // ceil(q * count)-th smallest sample, capped by the true maximum. 0 when empty.
    double quantile_ns(double q) const {
        if (m_total == 0) {
            return 0.0;
        }
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(m_total) + 0.999999);
        rank = std::clamp<std::uint64_t>(rank, 1, m_total);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < k_buckets; ++i) {
            seen += m_counts[i];
            if (seen >= rank) {
                double mid =
                    static_cast<double>(lower_bound(i)) + static_cast<double>(width(i) - 1) / 2.0;
                return std::min(mid, static_cast<double>(m_max));
            }
        }
        return static_cast<double>(m_max);
    }

private:
    // Values below 32 get one bucket each. Above, a value with its top bit at position e
    // keeps its 5 bits below the top one: bucket group (e - 4), sub-bucket = those 5 bits.
    static std::size_t index_of(std::uint64_t v) {
        if (v < (1u << k_sub_bits)) {
            return static_cast<std::size_t>(v);
        }
        unsigned e = static_cast<unsigned>(std::bit_width(v)) - 1;
        unsigned shift = e - k_sub_bits;
        return (std::size_t{shift + 1} << k_sub_bits) + ((v >> shift) - (1u << k_sub_bits));
    }

    static std::uint64_t lower_bound(std::size_t i) {
        if (i < (1u << k_sub_bits)) {
            return i;
        }
        std::size_t shift = (i >> k_sub_bits) - 1;
        std::uint64_t mantissa = (i & ((1u << k_sub_bits) - 1)) + (1u << k_sub_bits);
        return mantissa << shift;
    }

    static std::uint64_t width(std::size_t i) {
        return i < (1u << k_sub_bits) ? 1 : std::uint64_t{1} << ((i >> k_sub_bits) - 1);
    }

    std::array<std::uint64_t, k_buckets> m_counts{};
    std::uint64_t m_total = 0;
    std::uint64_t m_sum = 0;
    std::uint64_t m_max = 0;
};

} // namespace bench
