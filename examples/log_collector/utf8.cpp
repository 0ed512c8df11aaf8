// log_collector/utf8.cpp - UTF-8 validation and replacement (see utf8.hpp).
#include "utf8.hpp"

namespace logcollect {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD

bool is_continuation(unsigned char c) noexcept {
    return (c & 0xC0U) == 0x80U;
}

} // namespace

// Table 3-7 of the Unicode standard ("Well-Formed UTF-8 Byte Sequences"):
// the second byte's range depends on the lead byte, which excludes overlong
// forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points past
// U+10FFFF (F4 90..BF). Lead bytes C0, C1 and F5..FF never start a sequence.
std::size_t utf8_sequence_length(std::string_view s, std::size_t* maximal_subpart) noexcept {
    const auto b0 = static_cast<unsigned char>(s[0]);
    if (b0 < 0x80U) {
        return 1;
    }
    std::size_t need = 0;
    unsigned char lo = 0x80U;
    unsigned char hi = 0xBFU;
    if (b0 >= 0xC2U && b0 <= 0xDFU) {
        need = 2;
    } else if (b0 >= 0xE0U && b0 <= 0xEFU) {
        need = 3;
        lo = b0 == 0xE0U ? 0xA0U : 0x80U;
        hi = b0 == 0xEDU ? 0x9FU : 0xBFU;
    } else if (b0 >= 0xF0U && b0 <= 0xF4U) {
        need = 4;
        lo = b0 == 0xF0U ? 0x90U : 0x80U;
        hi = b0 == 0xF4U ? 0x8FU : 0xBFU;
    } else {
        *maximal_subpart = 1;
        return 0;
    }
    std::size_t i = 1;
    for (; i < need && i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        const bool ok = i == 1 ? (c >= lo && c <= hi) : is_continuation(c);
        if (!ok) {
            break;
        }
    }
    if (i == need) {
        return need;
    }
    *maximal_subpart = i; // the lead byte and the continuation bytes that fit
    return 0;
}

void append_utf8_sanitized(std::string& out, std::string_view in) {
    std::size_t run = 0; // start of the current run of valid bytes
    std::size_t i = 0;
    while (i < in.size()) {
        if (static_cast<unsigned char>(in[i]) < 0x80U) {
            ++i; // fast path: ASCII
            continue;
        }
        std::size_t bad = 0;
        std::size_t n = utf8_sequence_length(in.substr(i), &bad);
        if (n != 0) {
            i += n;
            continue;
        }
        out.append(in.substr(run, i - run));
        out.append(replacement);
        i += bad;
        run = i;
    }
    out.append(in.substr(run));
}

bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t bad = 0;
        std::size_t n = utf8_sequence_length(s.substr(i), &bad);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

std::size_t utf8_safe_cut(std::string_view s, std::size_t n) noexcept {
    // Look back at most three bytes for the lead byte of the character that
    // straddles n; cut before it if it is well-formed across the cut.
    for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if (!is_continuation(c)) {
            if (c < 0x80U) {
                return n;
            }
            // It straddles the cut if it is complete and longer than `back`,
            // or still a valid prefix when the data runs out (its end has not
            // arrived yet).
            std::string_view rest = s.substr(n - back);
            std::size_t bad = 0;
            std::size_t len = utf8_sequence_length(rest, &bad);
            bool straddles = len > back || (len == 0 && bad == rest.size() && bad > back);
            return straddles && n - back > 0 ? n - back : n;
        }
    }
    return n;
}

} // namespace logcollect
