// echo_client - many concurrent echo clients on one loop, every byte checked.
//
// What it shows: gather over a vector of tasks (one per connection),
// coio::connect, and a writer and a reader running concurrently on one
// socket so neither side can deadlock on full socket buffers.
//
// Run:  ./build/examples/echo_client --port PORT [--host 127.0.0.1]
//           [--connections 100] [--messages 100] [--size 64]
// Exits 0 if every echoed byte matched, 1 otherwise (naming the connection).
#include <coio/coio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::size_t connections = 100;
    std::size_t messages = 100;
    std::size_t size = 64;
};

// Byte i of connection c's stream: differs per connection and per position.
char pattern(std::size_t c, std::size_t i) {
    return static_cast<char>('a' + (c * 7 + i * 13 + i / 251) % 26);
}

coio::task<std::size_t> write_side(coio::socket* s, std::size_t id, options o) {
    std::string msg(o.size, '\0');
    std::size_t sent = 0;
    for (std::size_t m = 0; m < o.messages; ++m) {
        for (std::size_t i = 0; i < o.size; ++i) {
            msg[i] = pattern(id, sent + i);
        }
        coio::io_result r = co_await s->write_all(msg);
        if (!r) {
            throw std::runtime_error("connection " + std::to_string(id) + ": write " + r.message());
        }
        sent += o.size;
    }
    co_return sent;
}

coio::task<std::size_t> read_side(coio::socket* s, std::size_t id, std::size_t expect) {
    std::vector<char> buf(64 * 1024);
    std::size_t got = 0;
    while (got < expect) {
        coio::io_result r = co_await s->read_some(std::span<char>(buf));
        if (!r) {
            throw std::runtime_error("connection " + std::to_string(id) + ": read " + r.message() +
                                     " after " + std::to_string(got) + " of " +
                                     std::to_string(expect) + " bytes");
        }
        for (std::size_t i = 0; i < r.bytes; ++i) {
            if (buf[i] != pattern(id, got + i)) {
                throw std::runtime_error("connection " + std::to_string(id) +
                                         ": wrong byte at offset " + std::to_string(got + i));
            }
        }
        got += r.bytes;
    }
    co_return got;
}

coio::task<std::size_t> client(std::size_t id, options o) {
    coio::socket s = co_await coio::connect(o.host, o.port);
    auto [sent, received] =
        co_await coio::gather(write_side(&s, id, o), read_side(&s, id, o.messages * o.size));
    (void)sent;
    co_return received;
}

coio::task<int> run_all(options o) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<coio::task<std::size_t>> clients;
    clients.reserve(o.connections);
    for (std::size_t c = 0; c < o.connections; ++c) {
        clients.push_back(client(c, o));
    }
    std::vector<std::size_t> got = co_await coio::gather(std::move(clients));
    std::size_t total = 0;
    for (std::size_t g : got) {
        total += g;
    }
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
    std::printf(
        "%zu connections x %zu messages x %zu bytes: all %zu bytes echoed intact in %.1f ms\n",
        o.connections, o.messages, o.size, total, ms.count());
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", argv[i]);
                std::exit(2);
            }
            return argv[++i];
        };
        if (std::strcmp(argv[i], "--host") == 0) {
            o.host = next();
        } else if (std::strcmp(argv[i], "--port") == 0) {
            o.port = static_cast<std::uint16_t>(std::strtoul(next(), nullptr, 10));
        } else if (std::strcmp(argv[i], "--connections") == 0) {
            o.connections = std::strtoul(next(), nullptr, 10);
        } else if (std::strcmp(argv[i], "--messages") == 0) {
            o.messages = std::strtoul(next(), nullptr, 10);
        } else if (std::strcmp(argv[i], "--size") == 0) {
            o.size = std::strtoul(next(), nullptr, 10);
        } else {
            std::fprintf(stderr,
                         "usage: %s --port N [--host ADDR] [--connections N] [--messages N] "
                         "[--size BYTES]\n",
                         argv[0]);
            return 2;
        }
    }
    if (o.port == 0) {
        std::fprintf(stderr, "echo_client: --port is required\n");
        return 2;
    }
    try {
        return coio::run(run_all(o));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}
