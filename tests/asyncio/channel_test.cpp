// tests/asyncio/channel_test.cpp - coio::channel (Tokio's mpsc). Built into
// thread_test, so scripts/test also runs it under ThreadSanitizer. Catch2's
// macros are not thread-safe: other threads only record what happened.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/channel.hpp>
#include <coio/race.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using coio::task;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;
using sender_t = coio::channel_sender<int>;
using receiver_t = coio::channel_receiver<int>;

namespace {

// Sends from..to-1, notes each completed send, then drops its sender: a
// parameter lives as long as the frame, which a task_handle keeps after the
// task finished (issue 11.3), and the receiver's stream ends only when the
// last sender is gone.
task<> produce(sender_t tx, int from, int to, std::vector<std::string>* log) {
    for (int i = from; i < to; ++i) {
        bool ok = co_await tx.send(i);
        log->push_back((ok ? "sent " : "refused ") + std::to_string(i));
    }
    tx.reset();
}

// Receives until the end; returns what came.
task<std::vector<int>> drain(receiver_t* rx) {
    std::vector<int> got;
    for (;;) {
        std::optional<int> v = co_await rx->recv();
        if (!v) {
            break;
        }
        got.push_back(*v);
    }
    co_return got;
}

} // namespace

TEST_CASE("a channel delivers in order and makes a fast sender wait while full", "[channel]") {
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<int>(2);
        std::vector<std::string> log;
        auto p = coio::create_task(produce(std::move(tx), 0, 5, &log));
        co_await coio::yield_now();
        co_await coio::yield_now();
        // Capacity 2: two sends completed, the third waits for room.
        CHECK(log == std::vector<std::string>{"sent 0", "sent 1"});
        CHECK(rx.size() == 2);
        CHECK_FALSE(p.done());
        std::vector<int> got = co_await drain(&rx); // ends once the producer is gone
        CHECK(got == std::vector<int>{0, 1, 2, 3, 4});
        CHECK(log.size() == 5);
        CHECK(rx.is_closed());
    }());
}

TEST_CASE("recv returns what is buffered after the last sender went, then nullopt", "[channel]") {
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<int>(4);
        {
            sender_t copy = tx; // two senders
            CHECK(copy.try_send(1) == coio::channel_status::ok);
        }
        CHECK(tx.try_send(2) == coio::channel_status::ok);
        tx.reset(); // the last one
        std::vector<int> got = co_await drain(&rx);
        CHECK(got == std::vector<int>{1, 2});
        auto again = co_await rx.recv();
        CHECK_FALSE(again.has_value());
    }());
}

TEST_CASE("close() refuses sends, wakes waiting senders and keeps what is buffered", "[channel]") {
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<int>(1);
        std::vector<std::string> log;
        auto p = coio::create_task(produce(tx, 10, 12, &log));
        co_await coio::yield_now();
        co_await coio::yield_now(); // 10 is buffered, 11 waits for room
        rx.close();
        co_await p;
        CHECK(log == std::vector<std::string>{"sent 10", "refused 11"});
        CHECK(tx.is_closed());
        int v = 5;
        CHECK(tx.try_send(std::move(v)) == coio::channel_status::closed);
        bool ok = co_await tx.send(6);
        CHECK_FALSE(ok);
        std::optional<int> first = co_await rx.recv();
        std::optional<int> end = co_await rx.recv(); // closed: no wait for tx
        CHECK(first == 10);
        CHECK_FALSE(end.has_value());
    }());
}

TEST_CASE("try_send reports full and closed and leaves the value alone", "[channel]") {
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<std::unique_ptr<int>>(1);
        auto a = std::make_unique<int>(1);
        auto b = std::make_unique<int>(2);
        CHECK(tx.try_send(std::move(a)) == coio::channel_status::ok);
        CHECK(tx.try_send(std::move(b)) == coio::channel_status::full);
        REQUIRE(b); // not moved from
        CHECK(*b == 2);
        auto got = rx.try_recv();
        REQUIRE(got);
        CHECK(**got == 1);
        CHECK_FALSE(rx.try_recv().has_value());
        CHECK_FALSE(rx.is_closed());
        co_return;
    }());
}

TEST_CASE("a destroyed receiver drops what is buffered and refuses sends", "[channel]") {
    coio::test::counted::reset();
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<coio::test::counted>(3);
        CHECK(tx.try_send(coio::test::counted{}) == coio::channel_status::ok);
        CHECK(tx.try_send(coio::test::counted{}) == coio::channel_status::ok);
        CHECK(coio::test::counted::alive == 2);
        { auto gone = std::move(rx); }
        CHECK(coio::test::counted::alive == 0);
        CHECK(tx.is_closed());
        coio::test::counted late;
        bool ok = co_await tx.send(late);
        CHECK_FALSE(ok);
    }());
    CHECK(coio::test::counted::alive == 0);
}

TEST_CASE("a cancelled recv takes nothing, also when a value was handed to it", "[channel]") {
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<int>(2);
        auto reader = [](receiver_t* r) -> task<int> {
            std::optional<int> v = co_await r->recv();
            co_return v.value_or(-1);
        };
        // Cancelled while waiting.
        auto h1 = coio::create_task(reader(&rx));
        co_await coio::yield_now();
        h1.cancel();
        auto r1 = co_await outcome(h1);
        CHECK(r1 == "cancelled_error");
        // Handed a value, cancelled before it ran: the value goes back.
        auto h2 = coio::create_task(reader(&rx));
        co_await coio::yield_now();                        // parked
        CHECK(tx.try_send(7) == coio::channel_status::ok); // straight to the reader
        CHECK(rx.size() == 0);
        h2.cancel();
        auto r2 = co_await outcome(h2);
        CHECK(r2 == "cancelled_error");
        CHECK(rx.size() == 1);
        std::optional<int> v = co_await rx.recv();
        CHECK(v == 7);
        // So a race of recv against a stop signal loses nothing.
        coio::event stop;
        stop.set();
        CHECK(tx.try_send(8) == coio::channel_status::ok);
        auto r3 = co_await coio::race(stop.wait(), rx.recv());
        CHECK(r3.index() == 0);
        std::optional<int> w = co_await rx.recv();
        CHECK(w == 8);
    }());
}

TEST_CASE("a cancelled waiting send sends nothing", "[channel]") {
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<int>(1);
        CHECK(tx.try_send(1) == coio::channel_status::ok);
        auto r = co_await outcome(coio::wait_for(tx.send(2), 2ms));
        CHECK(r == "timeout_error");
        CHECK(rx.size() == 1);
        std::optional<int> v = co_await rx.recv();
        CHECK(v == 1);
        CHECK_FALSE(rx.try_recv().has_value());
    }());
}

TEST_CASE("channel misuse is refused clearly", "[channel]") {
    CHECK_THROWS_AS(coio::channel<int>(0), std::invalid_argument);
    run_clean([]() -> task<> {
        auto [tx, rx] = coio::channel<int>(1);
        CHECK_THROWS_AS(tx.send_blocking(1), std::logic_error); // on a loop's thread
        CHECK_THROWS_AS(rx.recv_blocking(), std::logic_error);
        auto reader = [](receiver_t* r) -> task<int> {
            std::optional<int> v = co_await r->recv();
            co_return v.value_or(-1);
        };
        auto h = coio::create_task(reader(&rx));
        co_await coio::yield_now();
        auto second = co_await outcome(reader(&rx));
        CHECK(second == "exception: coio::channel_receiver: recv() is already being awaited");
        tx.reset();
        auto r = co_await outcome(h);
        CHECK(r == "value -1");
    }());
}

namespace {

constexpr int per_producer = 2000;

// A plain thread: send_blocking id*per_producer ... +per_producer-1.
void blocking_producer(sender_t tx, int id) {
    for (int i = 0; i < per_producer; ++i) {
        if (!tx.send_blocking(id * per_producer + i)) {
            return;
        }
    }
}

// Another loop's tasks: two senders on one loop.
int loop_producer(sender_t tx, int id) {
    return coio::run([](sender_t t, int base) -> task<int> {
        std::vector<std::string> log;
        auto a = produce(t, base * per_producer, base * per_producer + per_producer / 2, &log);
        auto b =
            produce(t, base * per_producer + per_producer / 2, (base + 1) * per_producer, &log);
        t.reset();
        co_await coio::gather(std::move(a), std::move(b));
        co_return static_cast<int>(log.size());
    }(std::move(tx), id));
}

} // namespace

TEST_CASE("threads and other loops send to one receiving loop; nothing lost, order kept "
          "per sender",
          "[channel]") {
    std::vector<int> got;
    int loop_sent = 0;
    // Not run_clean: the other loop's fds come and go meanwhile; the fds are
    // compared once every thread has finished.
    const std::string fds_before = coio::test::open_fd_list();
    {
        auto [tx, rx] = coio::channel<int>(16);
        std::vector<std::thread> threads;
        threads.emplace_back(blocking_producer, tx, 0);
        threads.emplace_back(blocking_producer, tx, 1);
        std::thread other_loop([&loop_sent, t = tx] { loop_sent = loop_producer(t, 2); });
        tx.reset(); // only the producers hold senders now
        {
            coio::event_loop loop;
            got = loop.run_until_complete(drain(&rx));
            coio::test::require_clean(loop);
        }
        for (auto& t : threads) {
            t.join();
        }
        other_loop.join();
    }
    CHECK(coio::test::open_fd_list() == fds_before);
    CHECK(loop_sent == per_producer);
    REQUIRE(got.size() == 3 * per_producer);
    // Each producer's values arrive in the order it sent them (the loop's two
    // tasks are two senders: each half in order).
    std::vector<int> last(6, -1);
    bool ordered = true;
    for (int v : got) {
        const int stream = v / (per_producer / 2);
        ordered = ordered && v > last[static_cast<std::size_t>(stream)];
        last[static_cast<std::size_t>(stream)] = v;
    }
    CHECK(ordered);
}

TEST_CASE("a plain thread receives with recv_blocking from a sending loop", "[channel]") {
    auto [tx, rx] = coio::channel<int>(4);
    std::vector<int> got;
    std::thread consumer([&got, r = std::move(rx)]() mutable {
        for (;;) {
            std::optional<int> v = r.recv_blocking();
            if (!v) {
                return;
            }
            got.push_back(*v);
        }
    });
    run_clean([](sender_t t) -> task<> {
        for (int i = 0; i < 100; ++i) {
            bool ok = co_await t.send(i);
            CHECK(ok);
        }
    }(std::move(tx)));
    consumer.join();
    REQUIRE(got.size() == 100);
    CHECK(got.front() == 0);
    CHECK(got.back() == 99);
}
