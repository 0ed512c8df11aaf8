// tests/asyncio/compose_test.cpp - every kind of awaitable coio returns goes
// through every combinator (issue 11.2, issue 14.1): wait_for(x, d),
// timeout(d, x), gather(x), race(x, sleep), shield(x). Each kind is awaited
// once through each with an operation that completes (and must give the
// right value), and once through wait_for with one that cannot complete
// (it must time out and leave nothing behind: run_clean checks the loop).
#include "asyncio/outcome.hpp"
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/race.hpp>

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>

using coio::task;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

constexpr auto long_wait = 10s;

template <class A>
using value_of = coio::detail::await_result_t<A>;

// Await a fresh `make()` through each combinator; returns the names of the
// combinators whose result `check` rejected (empty: all fine). `after`
// runs after each await (e.g. to release a lock).
template <class Make, class Check, class After>
task<std::string> through_all(Make make, Check check, After after) {
    using R = value_of<std::invoke_result_t<Make&>>;
    std::string bad;
    auto note = [&bad](bool ok, const char* name) {
        if (!ok) {
            bad += std::string(" ") + name;
        }
    };
    if constexpr (std::is_void_v<R>) {
        {
            auto a = make();
            co_await coio::wait_for(std::move(a), long_wait);
            after();
        }
        {
            auto a = make();
            co_await coio::timeout(long_wait, std::move(a));
            after();
        }
        {
            auto a = make();
            auto [v] = co_await coio::gather(std::move(a));
            note(std::is_same_v<decltype(v), std::monostate>, "gather");
            after();
        }
        {
            auto a = make();
            auto v = co_await coio::race(std::move(a), coio::sleep(long_wait));
            note(v.index() == 0, "race");
            after();
        }
        {
            auto a = make();
            co_await coio::shield(std::move(a));
            after();
        }
    } else {
        {
            auto a = make();
            auto v = co_await coio::wait_for(std::move(a), long_wait);
            note(check(v), "wait_for");
            after();
        }
        {
            auto a = make();
            auto v = co_await coio::timeout(long_wait, std::move(a));
            note(check(v), "timeout");
            after();
        }
        {
            auto a = make();
            auto t = co_await coio::gather(std::move(a));
            note(check(std::get<0>(t)), "gather");
            after();
        }
        {
            auto a = make();
            auto v = co_await coio::race(std::move(a), coio::sleep(long_wait));
            note(v.index() == 0 && check(std::get<0>(v)), "race");
            after();
        }
        {
            auto a = make();
            auto v = co_await coio::shield(std::move(a));
            note(check(v), "shield");
            after();
        }
    }
    co_return bad;
}

struct nothing {
    void operator()() const noexcept {}
};

// True if wait_for(a, 2ms) ends in timeout_error.
template <class A>
task<bool> times_out(A a) {
    try {
        co_await coio::wait_for(std::move(a), 2ms);
    } catch (const coio::timeout_error&) {
        co_return true;
    }
    co_return false;
}

task<int> quick(int v) {
    co_await coio::yield_now();
    co_return v;
}

task<int> sleepy() {
    co_await coio::sleep(long_wait);
    co_return 0;
}

int add(int a, int b) {
    return a + b;
}

void send_byte(const coio::socket& s, char c) {
    REQUIRE(::send(s.native_handle(), &c, 1, MSG_NOSIGNAL) == 1);
}

} // namespace

TEST_CASE("task and task_handle compose with every combinator", "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        auto mk = [] { return quick(7); };
        auto ck = [](int v) { return v == 7; };
        auto bad = co_await through_all(mk, ck, none);
        CHECK(bad.empty());
        auto mkh = [] { return coio::create_task(quick(8)); };
        auto ckh = [](int v) { return v == 8; };
        auto badh = co_await through_all(mkh, ckh, none);
        CHECK(badh.empty());
        bool t1 = co_await times_out(sleepy());
        bool t2 = co_await times_out(coio::create_task(sleepy()));
        CHECK(t1);
        CHECK(t2);
    }());
}

TEST_CASE("sleep and to_thread compose with every combinator", "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        auto mk = [] { return coio::sleep(1ms); };
        auto bad = co_await through_all(mk, none, none);
        CHECK(bad.empty());
        auto mkt = [] { return coio::to_thread(add, 2, 3); };
        auto ckt = [](int v) { return v == 5; };
        auto badt = co_await through_all(mkt, ckt, none);
        CHECK(badt.empty());
        bool t = co_await times_out(coio::sleep(long_wait));
        CHECK(t);
    }());
}

TEST_CASE("socket read_some, read_chunk and write_some compose with every combinator",
          "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        auto p = std::make_unique<coio::test::socket_pair>(co_await coio::test::connected_pair());
        auto q = std::make_unique<coio::test::socket_pair>(co_await coio::test::connected_pair());
        auto buf = std::make_unique<std::array<char, 16>>();

        // read_some: a byte is there each time.
        auto mk_read = [s = p.get(), b = buf.get()] {
            send_byte(s->client, 'r');
            return s->accepted.read_some(std::span(*b));
        };
        auto ck_read = [b = buf.get()](const coio::io_result& r) {
            return r.ok() && r.bytes == 1 && (*b)[0] == 'r';
        };
        auto bad = co_await through_all(mk_read, ck_read, none);
        CHECK(bad.empty());
        bool t1 = co_await times_out(p->accepted.read_some(std::span(*buf)));
        CHECK(t1);

        // read_chunk (its own socket: io_uring's multishot owns its data).
        auto mk_chunk = [s = q.get()] {
            send_byte(s->client, 'c');
            return s->accepted.read_chunk();
        };
        auto ck_chunk = [](const coio::chunk_result& r) {
            return r.ok() && r.data.size() == 1 && r.data.data()[0] == 'c';
        };
        auto badc = co_await through_all(mk_chunk, ck_chunk, none);
        CHECK(badc.empty());
        bool t2 = co_await times_out(q->accepted.read_chunk());
        CHECK(t2);

        // write_some: the peer has room.
        auto mk_write = [s = p.get()] { return s->client.write_some(std::string_view("w")); };
        auto ck_write = [](const coio::io_result& r) { return r.ok() && r.bytes == 1; };
        auto badw = co_await through_all(mk_write, ck_write, none);
        CHECK(badw.empty());
        std::array<char, 16> got{};
        coio::io_result r = co_await p->accepted.read_some(std::span(got));
        CHECK(std::string_view(got.data(), r.bytes) == "wwwww");
    }());
}

TEST_CASE("socket accept and connect compose with every combinator", "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        auto listener =
            std::make_unique<coio::socket>(coio::socket::open_tcp(coio::address::family::ipv4));
        listener->bind(coio::address::loopback_v4(0));
        listener->listen(64);
        auto clients = std::make_unique<std::deque<coio::socket>>();

        // accept: a client has connected each time.
        auto mk_accept = [l = listener.get(), c = clients.get()] {
            c->push_back(coio::socket::open_tcp(coio::address::family::ipv4));
            coio::address to = l->local_address();
            (void)::connect(c->back().native_handle(), static_cast<const sockaddr*>(to.data()),
                            to.size()); // non-blocking: EINPROGRESS
            return l->accept();
        };
        auto ck_accept = [](const coio::accept_result& r) { return r.ok() && r.sock.is_open(); };
        auto bad = co_await through_all(mk_accept, ck_accept, none);
        CHECK(bad.empty());
        bool t1 = co_await times_out(listener->accept());
        CHECK(t1);

        // connect: to the listener, which never accepts them.
        auto mk_connect = [l = listener.get(), c = clients.get()] {
            c->push_back(coio::socket::open_tcp(coio::address::family::ipv4));
            return c->back().connect(l->local_address());
        };
        auto ck_connect = [](const coio::io_result& r) { return r.ok(); };
        auto badc = co_await through_all(mk_connect, ck_connect, none);
        CHECK(badc.empty());
    }());
}

TEST_CASE("datagram receive and send compose with every combinator", "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        auto a = std::make_unique<coio::datagram_socket>(
            co_await coio::open_datagram_endpoint("127.0.0.1", 0));
        const std::uint16_t port = a->local_address().port();
        auto b = std::make_unique<coio::datagram_socket>(
            co_await coio::open_datagram_endpoint("127.0.0.1", 0, "127.0.0.1", port));
        auto buf = std::make_unique<std::array<char, 16>>();

        auto mk_recv = [a = a.get(), b = b.get(), buf = buf.get()] {
            const char d = 'd';
            REQUIRE(::send(b->native_handle(), &d, 1, 0) == 1);
            return a->receive_from(std::span(*buf));
        };
        auto ck_recv = [](const coio::datagram_result& r) { return r.ok() && r.bytes == 1; };
        auto bad = co_await through_all(mk_recv, ck_recv, none);
        CHECK(bad.empty());
        bool t1 = co_await times_out(a->receive_from(std::span(*buf)));
        CHECK(t1);

        auto mk_send = [b = b.get()] { return b->send(std::string_view("s")); };
        auto ck_send = [](const coio::datagram_result& r) { return r.ok() && r.bytes == 1; };
        auto bads = co_await through_all(mk_send, ck_send, none);
        CHECK(bads.empty());
        int sent = 0;
        for (int i = 0; i < 5; ++i) {
            coio::datagram_result r = co_await a->receive_from(std::span(*buf));
            sent += r.ok() && (*buf)[0] == 's' ? 1 : 0;
        }
        CHECK(sent == 5);
    }());
}

TEST_CASE("stream reader operations compose with every combinator", "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        coio::test::socket_pair p = co_await coio::test::connected_pair();
        auto peer = std::make_unique<coio::socket>(std::move(p.client));
        auto streams =
            std::make_unique<coio::stream_pair>(coio::make_streams(std::move(p.accepted)));

        auto mk_line = [s = peer.get(), st = streams.get()] {
            REQUIRE(::send(s->native_handle(), "line\n", 5, MSG_NOSIGNAL) == 5);
            return st->reader.readline();
        };
        auto ck_line = [](const std::string& v) { return v == "line\n"; };
        auto bad = co_await through_all(mk_line, ck_line, none);
        CHECK(bad.empty());
        auto mk_exact = [s = peer.get(), st = streams.get()] {
            REQUIRE(::send(s->native_handle(), "abc", 3, MSG_NOSIGNAL) == 3);
            return st->reader.readexactly(3);
        };
        auto ck_exact = [](const std::string& v) { return v == "abc"; };
        auto bade = co_await through_all(mk_exact, ck_exact, none);
        CHECK(bade.empty());
        bool t = co_await times_out(streams->reader.readline());
        CHECK(t);
        streams->writer.close();
        co_await streams->writer.wait_closed();
    }());
}

TEST_CASE("event wait, queue get and put and lock acquire compose with every combinator",
          "[compose]") {
    run_clean([]() -> task<> {
        const nothing none; // named: no aggregate temporary beside a co_await (g++ 12)
        auto ev = std::make_unique<coio::event>();
        ev->set();
        auto mk_ev = [e = ev.get()] { return e->wait(); };
        auto bad = co_await through_all(mk_ev, none, none);
        CHECK(bad.empty());
        coio::event never;
        bool t1 = co_await times_out(never.wait());
        CHECK(t1);

        auto q = std::make_unique<coio::queue<int>>();
        auto mk_get = [q = q.get()] {
            q->put_nowait(5);
            return q->get();
        };
        auto ck_get = [](int v) { return v == 5; };
        auto badg = co_await through_all(mk_get, ck_get, none);
        CHECK(badg.empty());
        bool t2 = co_await times_out(q->get());
        CHECK(t2);
        auto mk_put = [q = q.get()] { return q->put(6); };
        auto badp = co_await through_all(mk_put, none, none);
        CHECK(badp.empty());
        CHECK(q->qsize() == 5);
        coio::queue<int> full(1);
        full.put_nowait(1);
        bool t3 = co_await times_out(full.put(2));
        CHECK(t3);
        CHECK(full.qsize() == 1);

        auto l = std::make_unique<coio::lock>();
        auto mk_lock = [l = l.get()] { return l->acquire(); };
        auto release = [l = l.get()] { l->release(); };
        auto badl = co_await through_all(mk_lock, none, release);
        CHECK(badl.empty());
        CHECK_FALSE(l->locked());
        co_await l->acquire();
        bool t4 = co_await times_out(l->acquire());
        CHECK(t4);
        l->release();
        CHECK_FALSE(l->locked()); // the timed-out acquire did not take it
    }());
}
