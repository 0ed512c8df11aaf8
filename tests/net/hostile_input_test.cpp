// tests/net/hostile_input_test.cpp - the stream reader against awkward and
// hostile input (RELIABILITY 20-23), through the public API, on every
// backend: the same lines cut anywhere, lines far over the limit, bytes with
// no meaning, and an error in the middle of a line.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

// A connected pair of the given kind: AF_UNIX stream or TCP over loopback.
enum class pair_kind { unix_stream, tcp };

coio::task<coio::test::socket_pair> make_pair(pair_kind kind) {
    if (kind == pair_kind::tcp) {
        co_return co_await coio::test::connected_pair();
    }
    co_return coio::test::unix_pair();
}

// --- 20. fragmented input --------------------------------------------------------------

// `n` lines of 0-120 bytes (any byte but '\n'), each with its '\n'.
std::vector<std::string> make_lines(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < n; ++i) {
        std::string l(rng() % 121, '\0');
        for (char& c : l) {
            c = static_cast<char>(rng() % 255);
            c = c == '\n' ? '\xff' : c;
        }
        lines.push_back(l + "\n");
    }
    return lines;
}

// How the sender cuts the bytes: 0 = one write, else writes of `size` bytes,
// or random sizes 1-4096 when size < 0 (seeded); a loop pass after each.
coio::task<> send_cut(coio::socket s, std::string all, int size, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::size_t off = 0;
    while (off < all.size()) {
        std::size_t n = size == 0  ? all.size()
                        : size > 0 ? static_cast<std::size_t>(size)
                                   : 1 + rng() % 4096;
        n = std::min(n, all.size() - off);
        coio::io_result w = co_await s.write_all(std::string_view(all).substr(off, n));
        REQUIRE(w.ok());
        off += n;
        co_await coio::yield_now(); // let the reader see this piece alone
    }
    s.close(); // now: a parameter lives as long as the task's handle
}

coio::task<> lines_survive_any_cut(pair_kind kind, std::size_t n, int size, std::uint32_t seed) {
    coio::test::socket_pair p = co_await make_pair(kind);
    const std::vector<std::string> lines = make_lines(n, seed);
    std::string all;
    for (const std::string& l : lines) {
        all += l;
    }
    coio::task_handle<> sender =
        coio::create_task(send_cut(std::move(p.client), std::move(all), size, seed));
    coio::stream_pair s = coio::make_streams(std::move(p.accepted));
    std::size_t i = 0;
    for (; i < lines.size(); ++i) {
        std::string got = co_await s.reader.readline();
        if (got != lines[i]) {
            break;
        }
    }
    INFO("cut " << size << " seed " << seed << ": first wrong line " << i);
    CHECK(i == lines.size());
    co_await sender; // the sender's socket closes: EOF
    std::string after = co_await s.reader.readline();
    CHECK(after.empty());
    s.writer.close();
}

// --- 21. lines over the limit ----------------------------------------------------------------

coio::task<> send_long_line(coio::socket s, std::size_t length) {
    const std::string block(64 * 1024, 'z');
    for (std::size_t sent = 0; sent < length; sent += block.size()) {
        coio::io_result w = co_await s.write_all(std::string_view(block).substr(0, length - sent));
        if (!w) {
            co_return;
        }
    }
    co_await s.write_all("\nnext\n");
    s.close();
}

// A line of `length` bytes with no '\n' for a long time: readline throws
// limit_overrun_error while the reader holds at most limit + one chunk (a
// read buffer of the loop's pool: up to 64 KiB); the tail of the long line
// comes back as a line once its '\n' arrives (asyncio's rule, stream.hpp),
// then the next line is read normally.
coio::task<> long_line(std::size_t length) {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::task_handle<> sender = coio::create_task(send_long_line(std::move(p.client), length));
    coio::stream_pair s = coio::make_streams(std::move(p.accepted));
    const std::size_t limit = s.reader.limit();
    CHECK(limit == 64 * 1024);
    std::size_t overruns = 0;
    std::size_t tails = 0;
    std::size_t max_buffered = 0;
    std::string line;
    for (int calls = 0; calls < 10'000 && line != "next\n"; ++calls) {
        try {
            line = co_await s.reader.readline();
            CHECK(line.size() <= limit + 1);
            if (line != "next\n") {
                CHECK(line.find_first_not_of('z') == line.size() - 1); // z...z\n
                ++tails;
            }
        } catch (const coio::limit_overrun_error&) {
            ++overruns;
        }
        max_buffered = std::max(max_buffered, s.reader.buffered());
    }
    CHECK(line == "next\n");
    const std::size_t chunk = 64 * 1024;         // the pool's big buffers
    CHECK(overruns >= length / (limit + chunk)); // one per limit's worth, about
    CHECK(tails <= 1);
    CHECK(max_buffered <= limit + chunk + 1);
    co_await sender;
    s.writer.close();
}

// --- 22. bytes with no meaning ------------------------------------------------------------------

coio::task<> garbage_is_just_bytes() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    std::string input;
    const std::vector<std::string> expected = {
        std::string("a\0b\n", 4), // NUL bytes are bytes
        "lone\rcarriage\n",       // a lone '\r' is a byte
        "crlf\r\n",               // '\r\n': the '\r' stays in the line
        "\xff\xfe\xc0\x80\n",     // invalid UTF-8 is not checked
    };
    for (const std::string& l : expected) {
        input += l;
    }
    input += std::string(100'000, '\n'); // 100,000 empty lines
    coio::task_handle<> sender =
        coio::create_task(send_cut(std::move(p.client), std::move(input), -1, 22));
    coio::stream_pair s = coio::make_streams(std::move(p.accepted));
    for (const std::string& want : expected) {
        std::string got = co_await s.reader.readline();
        CHECK(got == want);
    }
    std::size_t empty_lines = 0;
    for (;;) {
        std::string got = co_await s.reader.readline();
        if (got.empty()) {
            break; // EOF
        }
        CHECK(got == "\n");
        ++empty_lines;
    }
    CHECK(empty_lines == 100'000);
    co_await sender;
    s.writer.close();
}

// --- 23. an error in the middle of a line ---------------------------------------------------

// "Hello Wor", then the connection ends: reset (RST) or closed (FIN).
coio::task<> partial_then(coio::socket* peer, bool reset) {
    coio::io_result w = co_await peer->write_all("Hello Wor");
    REQUIRE(w.ok());
    if (reset) {
        linger lg{1, 0};
        REQUIRE(::setsockopt(peer->native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    }
    peer->close();
}

coio::task<> error_mid_line(bool reset, bool exactly) {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::stream_pair s = coio::make_streams(std::move(p.accepted));
    co_await partial_then(&p.client, reset);
    std::string outcome;
    try {
        if (exactly) {
            outcome = "value '" + co_await s.reader.readexactly(20) + "'";
        } else {
            outcome = "value '" + co_await s.reader.readline() + "'";
        }
    } catch (const coio::net_error& e) {
        outcome = std::string("net_error ") + e.what();
    } catch (const coio::incomplete_read_error& e) {
        outcome = "incomplete '" + e.partial() + "'";
    }
    INFO(outcome);
    if (reset) {
        // The error surfaces; "Hello Wor" is never delivered as a line.
        CHECK_THAT(outcome,
                   Catch::StartsWith("net_error") && Catch::Contains("Connection reset by peer"));
    } else if (exactly) {
        CHECK(outcome == "incomplete 'Hello Wor'");
    } else {
        // An orderly close: the partial last line, as asyncio's readline.
        CHECK(outcome == "value 'Hello Wor'");
    }
    s.writer.close();
}

} // namespace

TEST_CASE("10,000 lines read back the same in one write, 10-byte writes and random cuts",
          "[net][hostile]") {
    for (pair_kind kind : {pair_kind::unix_stream, pair_kind::tcp}) {
        run_clean(lines_survive_any_cut(kind, 10'000, 0, 20));
        run_clean(lines_survive_any_cut(kind, 10'000, 10, 20));
        for (std::uint32_t seed = 1; seed <= 5; ++seed) {
            run_clean(lines_survive_any_cut(kind, 10'000, -1, seed));
        }
    }
}

TEST_CASE("1,000 lines read back the same in 1-byte writes", "[net][hostile]") {
    for (pair_kind kind : {pair_kind::unix_stream, pair_kind::tcp}) {
        run_clean(lines_survive_any_cut(kind, 1000, 1, 21));
    }
}

TEST_CASE("a 1 MiB line and a 10 MiB line: limit errors, bounded memory, the next line readable",
          "[net][hostile]") {
    run_clean(long_line(1024 * 1024));
    run_clean(long_line(10 * 1024 * 1024));
}

TEST_CASE("NUL bytes, a lone CR, CRLF, invalid UTF-8 and 100,000 empty lines come back as bytes",
          "[net][hostile]") {
    run_clean(garbage_is_just_bytes());
}

TEST_CASE("a reset in the middle of a line is an error, never a complete line", "[net][hostile]") {
    run_clean(error_mid_line(true, false));
    run_clean(error_mid_line(true, true));
}

TEST_CASE("an orderly close in the middle of a line gives the partial line, as asyncio",
          "[net][hostile]") {
    run_clean(error_mid_line(false, false));
    run_clean(error_mid_line(false, true));
}
