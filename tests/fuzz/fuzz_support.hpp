// tests/fuzz/fuzz_support.hpp - what the libFuzzer targets share: an invariant
// check that aborts with a message (libFuzzer then saves the input), the
// chunk boundaries an input chooses, and the records the log collector's
// line assembler and syslog deframer emit, kept for comparison.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include "line_assembler.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// An invariant broke: say which, and abort so libFuzzer saves the input.
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__,           \
                         __LINE__);                                                                \
            std::abort();                                                                          \
        }                                                                                          \
    } while (false)

namespace fuzz {

// Splits `data` into chunks whose sizes the provider chooses (sizes 0 to 64,
// then the rest in one), so the same bytes are fed with boundaries anywhere.
inline std::vector<std::string_view> choose_chunks(std::string_view data, FuzzedDataProvider& fdp) {
    std::vector<std::string_view> out;
    while (!data.empty()) {
        std::size_t n = data.size();
        if (fdp.remaining_bytes() > 0) {
            n = fdp.ConsumeIntegralInRange<std::size_t>(0, 64);
            if (n > data.size()) {
                n = data.size();
            }
        }
        out.push_back(data.substr(0, n));
        data.remove_prefix(n);
    }
    return out;
}

// One record a line assembler or deframer emitted.
struct record {
    std::string text;
    logcollect::record_kind kind;
    std::uint32_t part;
    std::string framing; // deframer only
    friend bool operator==(const record&, const record&) = default;
};

// Collects records; checks the bounds every record must respect.
struct recorder {
    std::size_t max_line;
    std::vector<record> records;

    void add(std::string_view text, logcollect::record_kind kind, std::uint32_t part,
             std::string_view framing = {}) {
        using logcollect::record_kind;
        FUZZ_CHECK(text.size() <= max_line);
        if (kind == record_kind::part) {
            FUZZ_CHECK(!text.empty());
        }
        if (kind == record_kind::aborted) {
            FUZZ_CHECK(text.empty());
        }
        records.push_back(record{std::string(text), kind, part, std::string(framing)});
    }
};

// One message put back together from its records: the text of a whole record,
// or of the pieces and the last piece. `aborted` if it ended with an aborted
// record (pieces out, the rest never came).
struct message {
    std::string text;
    std::string framing;
    bool aborted = false;
    friend bool operator==(const message&, const message&) = default;
};

// Rebuilds the messages and checks the piece numbering: pieces count 1, 2,
// ...; the last piece carries the next number; aborted carries the count.
inline std::vector<message> reassemble(const std::vector<record>& records) {
    using logcollect::record_kind;
    std::vector<message> out;
    std::string partial;
    std::string framing;
    std::uint32_t pieces = 0;
    for (const record& r : records) {
        switch (r.kind) {
        case record_kind::whole:
            FUZZ_CHECK(pieces == 0);
            out.push_back(message{r.text, r.framing, false});
            break;
        case record_kind::part:
            FUZZ_CHECK(r.part == pieces + 1);
            FUZZ_CHECK(pieces == 0 || r.framing == framing);
            ++pieces;
            partial += r.text;
            framing = r.framing;
            break;
        case record_kind::last:
            FUZZ_CHECK(pieces > 0 && r.part == pieces + 1);
            FUZZ_CHECK(r.framing == framing);
            out.push_back(message{partial + r.text, r.framing, false});
            partial.clear();
            pieces = 0;
            break;
        case record_kind::aborted:
            FUZZ_CHECK(pieces > 0 && r.part == pieces);
            out.push_back(message{partial, framing, true});
            partial.clear();
            pieces = 0;
            break;
        }
    }
    FUZZ_CHECK(pieces == 0); // every line with pieces out was completed or aborted
    return out;
}

} // namespace fuzz
