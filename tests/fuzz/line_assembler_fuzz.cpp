// tests/fuzz/line_assembler_fuzz.cpp - libFuzzer target for the log
// collector's line assembler (examples/log_collector/line_assembler.hpp).
//
// The input is the byte stream, the line limit and the chunk boundaries. The
// stream is fed once whole and once in the chosen chunks; the two must emit
// the same records (the result does not depend on how reads cut the stream),
// and the records must put back every complete line exactly (RELIABILITY 24):
// each record at most max_line bytes, no '\n' inside, pieces numbered in
// order, the buffer never above max_line + 4 bytes, and at the end the pieces
// of the unfinished line plus the bytes end_of_stream() dropped are that line.
#include "fuzz_support.hpp"

#include <algorithm>

namespace {

struct run_result {
    std::vector<fuzz::record> records;
    std::size_t dropped = 0;
};

run_result run(const std::vector<std::string_view>& chunks, std::size_t max_line) {
    logcollect::line_assembler la(max_line);
    fuzz::recorder rec{la.max_line(), {}};
    auto emit = [&rec](std::string_view text, logcollect::record_kind kind, std::uint32_t part) {
        FUZZ_CHECK(text.find('\n') == std::string_view::npos);
        rec.add(text, kind, part);
    };
    for (std::string_view c : chunks) {
        la.feed(c, emit);
        FUZZ_CHECK(la.buffered() <= la.max_line() + 4);
    }
    run_result out;
    out.dropped = la.end_of_stream(emit);
    FUZZ_CHECK(la.buffered() == 0 && la.pieces() == 0);
    out.records = std::move(rec.records);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    // Mostly small limits, so that pieces and UTF-8 cuts happen often.
    const std::size_t max_line = fdp.ConsumeBool()
                                     ? fdp.ConsumeIntegralInRange<std::size_t>(0, 16)
                                     : fdp.ConsumeIntegralInRange<std::size_t>(0, 300);
    const std::string stream = fdp.ConsumeRandomLengthString(8192);
    const std::vector<std::string_view> chunks = fuzz::choose_chunks(stream, fdp);

    const run_result whole = run({std::string_view(stream)}, max_line);
    const run_result chunked = run(chunks, max_line);
    FUZZ_CHECK(whole.records == chunked.records);
    FUZZ_CHECK(whole.dropped == chunked.dropped);

    // The records give back the complete lines, in order.
    const std::vector<fuzz::message> got = fuzz::reassemble(whole.records);
    std::vector<std::string_view> lines;
    std::string_view rest = stream;
    for (std::size_t nl = rest.find('\n'); nl != std::string_view::npos; nl = rest.find('\n')) {
        lines.push_back(rest.substr(0, nl));
        rest.remove_prefix(nl + 1);
    }
    std::size_t i = 0;
    for (; i < lines.size(); ++i) {
        FUZZ_CHECK(i < got.size());
        FUZZ_CHECK(!got[i].aborted && got[i].text == lines[i]);
    }
    // The unfinished line: its pieces (then an aborted record) and the bytes
    // dropped, or only dropped bytes.
    if (i < got.size()) {
        FUZZ_CHECK(i + 1 == got.size() && got[i].aborted);
        FUZZ_CHECK(rest.substr(0, got[i].text.size()) == got[i].text);
        FUZZ_CHECK(got[i].text.size() + whole.dropped == rest.size());
    } else {
        FUZZ_CHECK(whole.dropped == rest.size());
    }
    return 0;
}
