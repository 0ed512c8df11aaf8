// A program that uses coio the way a consumer project does: only the
// installed public headers and the library, found by pkg-config, by meson
// (coio as a subproject) or by CMake (find_package). scripts/check-consumers
// builds it those three ways from a fresh install and runs it: one line goes
// to an echo server on 127.0.0.1:0 and back. Exit 0 on a round trip, 1 on
// anything else (the error is printed).
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

namespace {

coio::task<> echo_line(coio::stream_reader reader, coio::stream_writer writer) {
    std::string line = co_await reader.readline();
    writer.write(line);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

coio::task<std::string> round_trip() {
    coio::server srv = co_await coio::start_server(echo_line, "127.0.0.1", 0);
    auto [reader, writer] = co_await coio::open_connection("127.0.0.1", srv.port());
    writer.write("hello from a consumer\n");
    co_await writer.drain();
    std::string back = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    co_return back;
}

coio::task<std::string> bounded() {
    using namespace std::chrono_literals;
    std::string back = co_await coio::wait_for(round_trip(), 10s);
    co_return back;
}

} // namespace

int main() {
    try {
        std::string back = coio::run(bounded());
        if (back != "hello from a consumer\n") {
            std::fprintf(stderr, "consumer: got back '%s'\n", back.c_str());
            return 1;
        }
        std::printf("consumer: round trip on %s ok\n", coio::backend_name().c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
