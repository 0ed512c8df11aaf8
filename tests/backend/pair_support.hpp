// tests/backend/pair_support.hpp - connected TCP socket pairs over 127.0.0.1
// for the backend tests (uring_test, pooled_test).
#pragma once

#include "support/support.hpp"

#include <coio/coio.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace coio::test {

struct sock_pair {
    coio::socket a; // the connecting side
    coio::socket b; // the accepted side
};

inline coio::socket listen_on_loopback(int backlog) {
    coio::socket l = coio::socket::open_tcp(coio::address::family::ipv4);
    l.bind(coio::address::loopback_v4(0));
    l.listen(backlog);
    return l;
}

// Two connected TCP sockets over 127.0.0.1, through `listener` (the caller's,
// which outlives this call) or through a listener of their own.
inline coio::task<sock_pair> connected_pair(coio::socket* listener = nullptr) {
    coio::socket own;
    if (listener == nullptr) {
        own = listen_on_loopback(16);
        listener = &own;
    }
    sock_pair p;
    p.a = coio::socket::open_tcp(coio::address::family::ipv4);
    coio::io_result c = co_await p.a.connect(listener->local_address());
    REQUIRE(c.ok());
    coio::accept_result r = co_await listener->accept();
    REQUIRE(r.ok());
    p.b = std::move(r.sock);
    co_return p;
}

// `count` connected pairs through one listener of their own (closed after).
inline coio::task<std::vector<sock_pair>> connected_pairs(std::size_t count) {
    coio::socket listener = listen_on_loopback(1024);
    std::vector<sock_pair> pairs;
    pairs.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        pairs.push_back(co_await connected_pair(&listener));
    }
    listener.close();
    co_return pairs;
}

// The 16-byte message the scale tests send on pair i.
inline std::string message_for(std::size_t i) {
    std::string m = "message " + std::to_string(i);
    m.resize(16, '.');
    return m;
}

// The waiter of an io_op submitted by hand (tests that must place submissions
// and closes exactly): a coroutine the loop resumes once per completion, which
// counts *left down and posts *waiter when it reaches zero. It runs to its
// first suspension when made; destroy it after its op has completed or been
// forgotten.
class completion_hook {
public:
    struct promise_type {
        completion_hook get_return_object() noexcept {
            return completion_hook(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        static std::suspend_never initial_suspend() noexcept { return {}; }
        static std::suspend_always final_suspend() noexcept { return {}; }
        static void return_void() noexcept {}
        [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }
    };
    completion_hook(completion_hook&& o) noexcept : m_h(std::exchange(o.m_h, {})) {}
    completion_hook& operator=(completion_hook&&) = delete;
    ~completion_hook() {
        if (m_h) {
            m_h.destroy();
        }
    }
    [[nodiscard]] std::coroutine_handle<> handle() const noexcept { return m_h; }

private:
    explicit completion_hook(std::coroutine_handle<promise_type> h) noexcept : m_h(h) {}
    std::coroutine_handle<promise_type> m_h;
};

inline completion_hook count_completions(int* left, std::coroutine_handle<>* waiter) {
    for (;;) {
        co_await std::suspend_always{};
        if (--*left == 0 && *waiter) {
            coio::detail::running_loop_core().post(std::exchange(*waiter, nullptr));
        }
    }
}

} // namespace coio::test
