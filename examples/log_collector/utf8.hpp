// log_collector/utf8.hpp - make arbitrary bytes valid UTF-8, and cut text
// without splitting a character.
//
// Log lines come from the network and may hold any bytes. Every record the
// collector writes is valid UTF-8: each maximal ill-formed subsequence is
// replaced by one U+FFFD (the Unicode "substitution of maximal subparts"
// practice, which is also what Python's bytes.decode("utf-8", "replace")
// does, so the Python tests can compute the expected text).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace logcollect {

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 if `s`
// does not start with one; *maximal_subpart gets the length of the ill-formed
// prefix to replace (at least 1) when 0 is returned.
std::size_t utf8_sequence_length(std::string_view s, std::size_t* maximal_subpart) noexcept;

// Append `in` to `out`, replacing ill-formed subsequences with U+FFFD.
void append_utf8_sanitized(std::string& out, std::string_view in);

// True if `s` is entirely well-formed UTF-8.
bool is_valid_utf8(std::string_view s) noexcept;

// A cut position <= n in `s` (n < s.size()) that does not split a well-formed
// multi-byte character which starts before n and ends after it. Returns n
// when there is nothing to move, or when moving would leave nothing before
// the cut.
std::size_t utf8_safe_cut(std::string_view s, std::size_t n) noexcept;

} // namespace logcollect
