// tests/fuzz/ack_parser_fuzz.cpp - libFuzzer target for log_source's ACK
// parser (examples/log_collector/log_source_state.hpp, RELIABILITY 24).
//
// The input is the byte stream the collector sends back and the chunk
// boundaries it arrives in. Fed whole and in the chosen chunks, the parser
// must judge the same lines the same way, and as a plain reading of the
// stream does: one verdict per '\n', true exactly for the line "ACK", nothing
// for an unfinished last line, whatever the lines' length.
#include "fuzz_support.hpp"
#include "log_source_state.hpp"

namespace {

std::vector<bool> run(const std::vector<std::string_view>& chunks) {
    logsource::ack_parser p;
    std::vector<bool> out;
    for (std::string_view c : chunks) {
        p.feed(c, [&out](bool ack) { out.push_back(ack); });
    }
    return out;
}

std::vector<bool> reference(std::string_view s) {
    std::vector<bool> out;
    for (std::size_t nl = s.find('\n'); nl != std::string_view::npos; nl = s.find('\n')) {
        out.push_back(s.substr(0, nl) == "ACK");
        s.remove_prefix(nl + 1);
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    const std::string stream = fdp.ConsumeRandomLengthString(4096);
    const std::vector<std::string_view> chunks = fuzz::choose_chunks(stream, fdp);
    const std::vector<bool> whole = run({std::string_view(stream)});
    FUZZ_CHECK(whole == run(chunks));
    FUZZ_CHECK(whole == reference(stream));
    return 0;
}
