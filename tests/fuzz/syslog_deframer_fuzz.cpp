// tests/fuzz/syslog_deframer_fuzz.cpp - libFuzzer target for the log
// collector's RFC 6587 deframer (examples/log_collector/syslog_framing.hpp).
//
// The input is the byte stream, the message limit and the chunk boundaries.
// The stream is fed once whole and once in the chosen chunks; both must emit
// the same records, and the messages they put back together must be those a
// plain reading of the framing rules (the header of syslog_framing.hpp) finds
// in the whole stream: octet counting when a frame starts with 1-10 digits
// (no leading zero) and a space, else up to LF; empty LF frames skipped; one
// trailing LF of an octet-counted message dropped; the last message emitted
// as it is at the end, flagged when an octet-counted one is cut short. Every
// record stays within max_line bytes, whatever MSG-LEN claims.
#include "fuzz_support.hpp"
#include "syslog_framing.hpp"

#include <cstdint>
#include <limits>

namespace {

struct run_result {
    std::vector<fuzz::record> records;
    bool truncated = false;
};

run_result run(const std::vector<std::string_view>& chunks, std::size_t max_line) {
    // No frame limit: counts above --max-frame (framing errors) are checked
    // by tests/logcollect; this model knows only the framing rules.
    logcollect::syslog_deframer d(max_line, std::numeric_limits<std::uint64_t>::max());
    fuzz::recorder rec{max_line == 0 ? 1 : max_line, {}};
    auto emit = [&rec](std::string_view text, logcollect::record_kind kind, std::uint32_t part,
                       std::string_view framing) {
        FUZZ_CHECK(framing == "lf" || framing == "octet");
        if (framing == "lf") {
            FUZZ_CHECK(text.find('\n') == std::string_view::npos);
        }
        rec.add(text, kind, part, framing);
    };
    for (std::string_view c : chunks) {
        d.feed(c, emit);
    }
    run_result out;
    out.truncated = d.end_of_stream(emit);
    out.records = std::move(rec.records);
    return out;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// The framing rules applied to the whole stream at once.
struct reference {
    std::vector<fuzz::message> messages;
    bool truncated = false;
};

reference frame(std::string_view s) {
    reference out;
    std::size_t i = 0;
    while (i < s.size()) {
        if (s[i] == '\n') {
            ++i; // an empty frame
            continue;
        }
        if (s[i] >= '1' && s[i] <= '9') {
            std::size_t j = i;
            while (j < s.size() && is_digit(s[j]) && j - i < 10) {
                ++j;
            }
            if (j < s.size() && s[j] == ' ') {
                const std::uint64_t len = std::stoull(std::string(s.substr(i, j - i)));
                const std::size_t body = j + 1;
                const std::size_t avail = s.size() - body;
                std::string text(
                    s.substr(body, len < avail ? static_cast<std::size_t>(len) : avail));
                if (len > avail) {
                    out.truncated = true;
                }
                if (!text.empty() && text.back() == '\n') {
                    text.pop_back();
                }
                out.messages.push_back({std::move(text), "octet", false});
                i = len < avail ? body + static_cast<std::size_t>(len) : s.size();
                continue;
            }
            // Not a length: the digits begin an LF-framed message.
        }
        const std::size_t nl = s.find('\n', i);
        const std::size_t end = nl == std::string_view::npos ? s.size() : nl;
        out.messages.push_back({std::string(s.substr(i, end - i)), "lf", false});
        i = nl == std::string_view::npos ? s.size() : nl + 1;
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    const std::size_t max_line = fdp.ConsumeBool()
                                     ? fdp.ConsumeIntegralInRange<std::size_t>(1, 16)
                                     : fdp.ConsumeIntegralInRange<std::size_t>(1, 300);
    const std::string stream = fdp.ConsumeRandomLengthString(8192);
    const std::vector<std::string_view> chunks = fuzz::choose_chunks(stream, fdp);

    const run_result whole = run({std::string_view(stream)}, max_line);
    const run_result chunked = run(chunks, max_line);
    FUZZ_CHECK(whole.records == chunked.records);
    FUZZ_CHECK(whole.truncated == chunked.truncated);

    const reference want = frame(stream);
    FUZZ_CHECK(fuzz::reassemble(whole.records) == want.messages);
    FUZZ_CHECK(whole.truncated == want.truncated);
    return 0;
}
