// tests/net/handler_arg_test.cpp - APIs that take callables own them before
// any coroutine runs, and a handler's state is counted right whichever way it
// is passed (issue #11: a handler passed as a temporary was a heap
// use-after-free under g++ 12; coio now refuses that shape on g++ 12 at
// compile time - tests/compile_fail - and these are the ways that work).
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <memory>
#include <string>

using coio::test::run_clean;

namespace {

struct state {
    int connections = 0;
};

struct counting_handler {
    std::shared_ptr<state> st;
    coio::task<> operator()(coio::socket s) {
        ++st->connections;
        co_await coio::test::echo_handler(std::move(s));
    }
};

// A handler that cannot be copied.
struct unique_handler {
    std::unique_ptr<state> st = std::make_unique<state>();
    coio::task<> operator()(coio::socket s) {
        ++st->connections;
        co_await coio::test::echo_handler(std::move(s));
    }
};

coio::task<> one_round_trip(std::uint16_t port) {
    coio::socket c = co_await coio::connect(coio::address::loopback_v4(port));
    co_await coio::test::expect_echo(&c, "ping");
}

coio::task<> named_handler_is_copied() {
    auto st = std::make_shared<state>();
    counting_handler h{st};
    coio::server srv = co_await coio::start_server(h, "127.0.0.1", 0);
    CHECK(st.use_count() == 3); // ours, h's, the server's copy
    co_await one_round_trip(srv.port());
    CHECK(st->connections == 1);
    srv.close();
    co_await srv.wait_closed();
}

coio::task<> moved_handler_is_moved() {
    unique_handler h;
    state* seen = h.st.get();
    coio::server srv = co_await coio::start_server(coio::moved(std::move(h)), "127.0.0.1", 0);
    CHECK(h.st == nullptr); // moved into the server
    co_await one_round_trip(srv.port());
    CHECK(seen->connections == 1);
    srv.close();
    co_await srv.wait_closed();
}

coio::task<> capturing_lambda_by_name() {
    auto st = std::make_shared<state>();
    auto handler = [st](coio::socket s) -> coio::task<> {
        ++st->connections;
        return coio::test::echo_handler(std::move(s));
    };
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0);
    co_await one_round_trip(srv.port());
    CHECK(st->connections == 1);
    srv.close();
    co_await srv.wait_closed();
    auto job = [st] { return st->connections * 10; };
    const int v = co_await coio::to_thread(job);
    CHECK(v == 10);
}

#if !(defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13)
// Compilers without the bug take the temporaries themselves.
coio::task<> temporaries_where_the_compiler_is_correct() {
    auto st = std::make_shared<state>();
    coio::server srv = co_await coio::start_server(counting_handler{st}, "127.0.0.1", 0);
    CHECK(st.use_count() == 2);
    co_await one_round_trip(srv.port());
    srv.close();
    co_await srv.wait_closed();
    const int v = co_await coio::to_thread([st] { return st->connections; });
    CHECK(v == 1);
}
#endif

} // namespace

TEST_CASE("a handler passed by name is copied once and its state counted right", "[net][args]") {
    run_clean(named_handler_is_copied());
}

TEST_CASE("a handler that cannot be copied is passed with coio::moved", "[net][args]") {
    run_clean(moved_handler_is_moved());
}

TEST_CASE("capturing lambdas passed by name work as handlers and jobs", "[net][args][threads]") {
    run_clean(capturing_lambda_by_name());
}

#if !(defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13)
TEST_CASE("temporaries are taken where the compiler handles them", "[net][args]") {
    run_clean(temporaries_where_the_compiler_is_correct());
}
#endif
