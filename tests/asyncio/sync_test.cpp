// tests/asyncio/sync_test.cpp - event, lock, semaphore, bounded_semaphore,
// condition, queue, lifo_queue, priority_queue.
//
// Interleavings are made with yields: a task created now runs on the next
// pass, before the creator resumes from a yield_now() made after creating it.
// The race "woken with a hand-off, then cancelled before it runs" is made by
// doing both in one go from the test task. CPython 3.11 was the reference
// (3.13 for Queue.shutdown and the condition's pass-on of a notification).
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using coio::task;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;
using log_t = std::vector<std::string>;

namespace {

task<> yields(int n) {
    for (int i = 0; i < n; ++i) {
        co_await coio::yield_now();
    }
}

template <class T>
std::string outcome_of(const coio::task_handle<T>& h) {
    try {
        if constexpr (std::is_void_v<T>) {
            h.result();
            return "done";
        } else {
            return "value " + std::to_string(h.result());
        }
    } catch (const coio::cancelled_error&) {
        return "cancelled_error";
    } catch (const std::exception& e) {
        return std::string("exception: ") + e.what();
    }
}

} // namespace

// --- event -------------------------------------------------------------------

TEST_CASE("event: set wakes every waiter; waiting on a set event does not suspend", "[sync]") {
    run_clean([]() -> task<> {
        coio::event e;
        log_t log;
        auto waiter = [](coio::event* ev, log_t* l, std::string name) -> task<> {
            co_await ev->wait();
            l->push_back(name);
        };
        auto a = coio::create_task(waiter(&e, &log, "a"));
        auto b = coio::create_task(waiter(&e, &log, "b"));
        co_await yields(2);
        CHECK(log.empty());
        CHECK_FALSE(e.is_set());
        e.set();
        CHECK(e.is_set());
        co_await a;
        co_await b;
        CHECK(log == log_t{"a", "b"});
        const auto iterations = coio::event_loop::running().stats().iterations;
        co_await e.wait(); // set: no suspension
        CHECK(coio::event_loop::running().stats().iterations == iterations);
        e.clear();
        CHECK_FALSE(e.is_set());
    }());
}

TEST_CASE("event: a cancelled waiter is removed; one cancelled after set() throws", "[sync]") {
    run_clean([]() -> task<> {
        coio::event e;
        auto waiter = [](coio::event* ev) -> task<> { co_await ev->wait(); };
        auto a = coio::create_task(waiter(&e));
        auto b = coio::create_task(waiter(&e));
        auto c = coio::create_task(waiter(&e));
        co_await coio::yield_now();
        a.cancel(); // while parked
        co_await coio::yield_now();
        CHECK(a.cancelled());
        e.set();
        b.cancel(); // woken, not yet run (asyncio raises CancelledError too)
        co_await outcome(b);
        co_await outcome(c);
        CHECK(outcome_of(b) == "cancelled_error");
        CHECK(outcome_of(c) == "done");
    }());
}

// --- lock --------------------------------------------------------------------

TEST_CASE("lock: mutual exclusion and FIFO order among waiters", "[sync]") {
    run_clean([]() -> task<> {
        coio::lock l;
        log_t log;
        int inside = 0;
        auto worker = [](coio::lock* lk, log_t* lg, int* in, std::string name) -> task<> {
            auto g = co_await lk->scoped();
            CHECK(++*in == 1);
            lg->push_back(name);
            co_await coio::yield_now(); // hold it across a suspension
            --*in;
        };
        std::vector<coio::task_handle<>> hs;
        for (const char* n : {"a", "b", "c", "d"}) {
            hs.push_back(coio::create_task(worker(&l, &log, &inside, n)));
        }
        for (auto& h : hs) {
            co_await h;
        }
        CHECK(log == log_t{"a", "b", "c", "d"});
        CHECK_FALSE(l.locked());
    }());
}

TEST_CASE("lock: try_acquire, release of an unheld lock, no barging past waiters", "[sync]") {
    run_clean([]() -> task<> {
        coio::lock l;
        CHECK_THROWS_AS(l.release(), std::logic_error);
        CHECK(l.try_acquire());
        CHECK_FALSE(l.try_acquire());
        auto waiter = [](coio::lock* lk) -> task<> {
            co_await lk->acquire();
            lk->release();
        };
        auto w = coio::create_task(waiter(&l));
        co_await coio::yield_now(); // w waits
        l.release();                // handed to w, which has not run yet
        CHECK(l.locked());
        CHECK_FALSE(l.try_acquire());                   // no barging
        CHECK_THROWS_AS(l.release(), std::logic_error); // nobody holds it
        co_await w;
        CHECK_FALSE(l.locked());
    }());
}

TEST_CASE("lock: a waiter cancelled after the hand-off never owns the lock", "[sync]") {
    // asyncio: ['a cancelled', 'b got'], the lock free afterwards.
    run_clean([]() -> task<> {
        coio::lock l;
        log_t log;
        auto waiter = [](coio::lock* lk, log_t* lg, std::string name) -> task<> {
            try {
                auto g = co_await lk->scoped();
                lg->push_back(name + " got");
            } catch (const coio::cancelled_error&) {
                lg->push_back(name + " cancelled");
                throw;
            }
        };
        co_await l.acquire();
        auto a = coio::create_task(waiter(&l, &log, "a"));
        auto b = coio::create_task(waiter(&l, &log, "b"));
        auto c = coio::create_task(waiter(&l, &log, "c"));
        co_await coio::yield_now();
        c.cancel();  // while parked: just removed
        l.release(); // hands the lock to a ...
        a.cancel();  // ... whose cancel arrives before it runs
        co_await outcome(a);
        co_await outcome(b);
        co_await outcome(c);
        CHECK(log == log_t{"c cancelled", "a cancelled", "b got"});
        CHECK_FALSE(l.locked());
    }());
}

TEST_CASE("lock: a guard can release early and be moved", "[sync]") {
    run_clean([]() -> task<> {
        coio::lock l;
        auto g = co_await l.scoped();
        CHECK(g.owns_lock());
        coio::lock_guard<coio::lock> moved = std::move(g);
        CHECK_FALSE(g.owns_lock());
        CHECK(l.locked());
        moved.unlock();
        CHECK_FALSE(l.locked());
        moved.unlock(); // no-op
    }());
}

TEST_CASE("lock: a thousand tasks contend without losing an update", "[sync]") {
    run_clean([]() -> task<> {
        coio::lock l;
        long counter = 0;
        auto add = [](coio::lock* lk, long* c) -> task<> {
            for (int i = 0; i < 10; ++i) {
                auto g = co_await lk->scoped();
                const long v = *c;
                co_await coio::yield_now();
                *c = v + 1;
            }
        };
        coio::task_group g;
        for (int i = 0; i < 1000; ++i) {
            g.create_task(add(&l, &counter));
        }
        co_await g.wait();
        CHECK(counter == 10'000);
    }());
}

// --- semaphore ---------------------------------------------------------------

TEST_CASE("semaphore: limits concurrency, FIFO, scoped permits", "[sync]") {
    run_clean([]() -> task<> {
        coio::semaphore s(2);
        int inside = 0;
        int most = 0;
        log_t order;
        auto worker = [](coio::semaphore* sm, int* in, int* mx, log_t* o, int id) -> task<> {
            auto permit = co_await sm->scoped();
            o->push_back(std::to_string(id));
            *mx = std::max(*mx, ++*in);
            co_await yields(2);
            --*in;
        };
        coio::task_group g;
        for (int i = 0; i < 6; ++i) {
            g.create_task(worker(&s, &inside, &most, &order, i));
        }
        co_await g.wait();
        CHECK(most == 2);
        CHECK(order == log_t{"0", "1", "2", "3", "4", "5"});
        CHECK(s.value() == 2);
        CHECK_FALSE(s.locked());
    }());
}

TEST_CASE("semaphore: a permit handed to a waiter cancelled before it ran goes on", "[sync]") {
    run_clean([]() -> task<> {
        coio::semaphore s(0);
        CHECK(s.locked());
        CHECK_FALSE(s.try_acquire());
        auto waiter = [](coio::semaphore* sm) -> task<> { co_await sm->acquire(); };
        auto a = coio::create_task(waiter(&s));
        auto b = coio::create_task(waiter(&s));
        co_await coio::yield_now();
        s.release(); // to a
        a.cancel();  // before a runs: the permit goes to b
        co_await outcome(a);
        co_await outcome(b);
        CHECK(outcome_of(a) == "cancelled_error");
        CHECK(outcome_of(b) == "done");
        CHECK(s.value() == 0); // b holds it
        s.release();
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("bounded_semaphore refuses to be released too many times", "[sync]") {
    run_clean([]() -> task<> {
        coio::bounded_semaphore s(1);
        CHECK_THROWS_AS(s.release(), std::logic_error);
        co_await s.acquire();
        auto waiter = [](coio::semaphore* sm) -> task<> {
            co_await sm->acquire();
            sm->release();
        };
        auto w = coio::create_task(waiter(&s));
        co_await coio::yield_now();
        s.release();                                    // handed to w
        CHECK_THROWS_AS(s.release(), std::logic_error); // w's permit is on its way
        co_await w;
        CHECK(s.value() == 1);
        CHECK_THROWS_AS(s.release(), std::logic_error);
    }());
}

// --- condition -----------------------------------------------------------------

TEST_CASE("condition: wait needs the lock; notify wakes one, notify_all the rest", "[sync]") {
    run_clean([]() -> task<> {
        coio::condition cv;
        log_t log;
        auto r = co_await outcome(cv.wait());
        CHECK(r == "exception: coio::condition: wait() without holding the lock");
        CHECK_THROWS_AS(cv.notify(), std::logic_error);
        auto waiter = [](coio::condition* c, log_t* l, std::string name) -> task<> {
            auto g = co_await c->scoped();
            co_await c->wait();
            CHECK(c->locked()); // re-acquired
            l->push_back(name);
        };
        auto a = coio::create_task(waiter(&cv, &log, "a"));
        auto b = coio::create_task(waiter(&cv, &log, "b"));
        auto c = coio::create_task(waiter(&cv, &log, "c"));
        co_await yields(2);
        {
            auto g = co_await cv.scoped();
            cv.notify();
        }
        co_await a;
        CHECK(log == log_t{"a"});
        {
            auto g = co_await cv.scoped();
            cv.notify_all();
        }
        co_await b;
        co_await c;
        CHECK(log == log_t{"a", "b", "c"});
    }());
}

TEST_CASE("condition: wait_for checks the predicate under the lock", "[sync]") {
    run_clean([]() -> task<> {
        coio::lock shared;
        coio::condition cv(shared);
        std::vector<int> items;
        auto consumer = [](coio::condition* c, std::vector<int>* it) -> task<int> {
            auto g = co_await c->scoped();
            co_await c->wait_for([it] { return it->size() >= 3; });
            co_return static_cast<int>(it->size());
        };
        auto h = coio::create_task(consumer(&cv, &items));
        for (int i = 0; i < 3; ++i) {
            co_await coio::yield_now();
            auto g = co_await shared.scoped();
            items.push_back(i);
            cv.notify();
        }
        const int seen = co_await h;
        CHECK(seen == 3);
    }());
}

TEST_CASE("condition: a cancelled wait re-acquires the lock before it throws", "[sync]") {
    run_clean([]() -> task<> {
        coio::condition cv;
        log_t log;
        auto waiter = [](coio::condition* c, log_t* l) -> task<> {
            auto g = co_await c->scoped();
            try {
                co_await c->wait();
            } catch (const coio::cancelled_error&) {
                l->push_back(c->locked() ? "cancelled, lock held" : "cancelled, no lock");
                throw;
            }
        };
        auto w = coio::create_task(waiter(&cv, &log));
        co_await coio::yield_now();
        auto g = co_await cv.scoped(); // hold the lock: w must wait for it after its cancel
        w.cancel();
        co_await yields(3);
        CHECK(log.empty());
        g.unlock();
        co_await outcome(w);
        CHECK(log == log_t{"cancelled, lock held"});
        CHECK(w.cancelled());
        CHECK_FALSE(cv.locked());
    }());
}

TEST_CASE("condition: a notification reaching a cancelled waiter is passed on", "[sync]") {
    // CPython 3.11 loses it (only ['a cancelled']); 3.12.x/3.13 pass it on
    // (gh-112202), as coio does.
    run_clean([]() -> task<> {
        coio::condition cv;
        log_t log;
        auto waiter = [](coio::condition* c, log_t* l, std::string name) -> task<> {
            auto g = co_await c->scoped();
            try {
                co_await c->wait();
                l->push_back(name + " notified");
            } catch (const coio::cancelled_error&) {
                l->push_back(name + " cancelled");
                throw;
            }
        };
        auto a = coio::create_task(waiter(&cv, &log, "a"));
        auto b = coio::create_task(waiter(&cv, &log, "b"));
        co_await coio::yield_now();
        {
            auto g = co_await cv.scoped();
            cv.notify(1); // wakes a
        }
        a.cancel(); // before a runs
        co_await outcome(a);
        co_await outcome(b);
        CHECK(log == log_t{"a cancelled", "b notified"});
    }());
}

// --- queue ---------------------------------------------------------------------

TEST_CASE("queue: FIFO, sizes, and the nowait errors", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q(2);
        CHECK(q.maxsize() == 2);
        CHECK(q.empty());
        CHECK_THROWS_AS(q.get_nowait(), coio::queue_empty);
        q.put_nowait(1);
        co_await q.put(2);
        CHECK(q.full());
        CHECK(q.qsize() == 2);
        CHECK_THROWS_AS(q.put_nowait(3), coio::queue_full);
        const int first = co_await q.get();
        CHECK(first == 1);
        CHECK(q.get_nowait() == 2);
        CHECK(q.empty());

        coio::queue<int> unbounded;
        for (int i = 0; i < 1000; ++i) {
            unbounded.put_nowait(i);
        }
        CHECK_FALSE(unbounded.full());
        int sum = 0;
        while (!unbounded.empty()) {
            sum += co_await unbounded.get();
        }
        CHECK(sum == 999 * 1000 / 2);
    }());
}

TEST_CASE("queue: a full queue blocks put; getters and putters are served FIFO", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q(1);
        log_t log;
        auto producer = [](coio::queue<int>* qq, log_t* l, int v) -> task<> {
            co_await qq->put(v);
            l->push_back("put " + std::to_string(v));
        };
        auto consumer = [](coio::queue<int>* qq, log_t* l) -> task<> {
            const int v = co_await qq->get();
            l->push_back("got " + std::to_string(v));
        };
        q.put_nowait(0);
        auto p1 = coio::create_task(producer(&q, &log, 1));
        auto p2 = coio::create_task(producer(&q, &log, 2));
        co_await coio::yield_now();
        CHECK(log.empty()); // both wait for space
        CHECK(q.get_nowait() == 0);
        CHECK_THROWS_AS(q.put_nowait(9), coio::queue_full); // space promised to p1
        co_await p1;
        auto c1 = coio::create_task(consumer(&q, &log));
        auto c2 = coio::create_task(consumer(&q, &log));
        co_await c1;
        co_await c2;
        co_await p2;
        CHECK(log == log_t{"put 1", "got 1", "put 2", "got 2"});
    }());
}

TEST_CASE("queue: a getter cancelled while parked takes nothing", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q;
        auto getter = [](coio::queue<int>* qq) -> task<int> { co_return co_await qq->get(); };
        auto a = coio::create_task(getter(&q));
        auto b = coio::create_task(getter(&q));
        co_await coio::yield_now();
        a.cancel();
        co_await coio::yield_now();
        q.put_nowait(5);
        co_await outcome(a);
        co_await outcome(b);
        CHECK(outcome_of(a) == "cancelled_error");
        CHECK(outcome_of(b) == "value 5");
    }());
}

TEST_CASE("queue: an item handed to a getter cancelled before it ran is not lost", "[sync]") {
    // asyncio: ['a cancelled', 'b got 1'], qsize 0.
    run_clean([]() -> task<> {
        coio::queue<int> q;
        auto getter = [](coio::queue<int>* qq) -> task<int> { co_return co_await qq->get(); };
        // To the next getter:
        auto a = coio::create_task(getter(&q));
        auto b = coio::create_task(getter(&q));
        co_await coio::yield_now();
        q.put_nowait(1); // handed to a
        a.cancel();      // before a runs
        co_await outcome(a);
        co_await outcome(b);
        CHECK(outcome_of(a) == "cancelled_error");
        CHECK(outcome_of(b) == "value 1");
        CHECK(q.empty());
        // Back to the front of the queue when nobody else waits:
        auto c = coio::create_task(getter(&q));
        co_await coio::yield_now();
        q.put_nowait(2); // handed to c
        q.put_nowait(3); // stored
        c.cancel();
        co_await outcome(c);
        CHECK(outcome_of(c) == "cancelled_error");
        CHECK(q.qsize() == 2);
        CHECK(q.get_nowait() == 2); // order kept
        CHECK(q.get_nowait() == 3);
    }());
}

TEST_CASE("queue: a putter cancelled after space was promised puts nothing", "[sync]") {
    // asyncio: ['a put cancelled', 'b put 3'], queue [3].
    run_clean([]() -> task<> {
        coio::queue<int> q(1);
        auto putter = [](coio::queue<int>* qq, int v) -> task<> { co_await qq->put(v); };
        q.put_nowait(1);
        auto a = coio::create_task(putter(&q, 2));
        auto b = coio::create_task(putter(&q, 3));
        co_await coio::yield_now();
        CHECK(q.get_nowait() == 1); // space promised to a
        a.cancel();                 // before a runs: the space goes to b
        co_await outcome(a);
        co_await outcome(b);
        CHECK(outcome_of(a) == "cancelled_error");
        CHECK(outcome_of(b) == "done");
        CHECK(q.qsize() == 1);
        CHECK(q.get_nowait() == 3);
    }());
}

TEST_CASE("queue: task_done and join", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q;
        CHECK_THROWS_AS(q.task_done(), std::logic_error);
        co_await q.join(); // nothing unfinished: no wait
        log_t log;
        auto worker = [](coio::queue<int>* qq, log_t* l) -> task<> {
            for (;;) {
                const int v = co_await qq->get();
                co_await coio::yield_now();
                l->push_back(std::to_string(v));
                qq->task_done();
            }
        };
        auto w = coio::create_task(worker(&q, &log));
        for (int i = 0; i < 3; ++i) {
            q.put_nowait(i);
        }
        co_await q.join();
        CHECK(log == log_t{"0", "1", "2"});
        w.cancel();
        co_await outcome(w);
    }());
}

TEST_CASE("lifo_queue and priority_queue orders", "[sync]") {
    run_clean([]() -> task<> {
        coio::lifo_queue<int> lifo;
        coio::priority_queue<int> prio;
        coio::priority_queue<int, std::greater<int>> maxfirst;
        for (int v : {3, 1, 4, 1, 5}) {
            lifo.put_nowait(v);
            prio.put_nowait(v);
            maxfirst.put_nowait(v);
        }
        std::vector<int> a, b, c;
        while (!lifo.empty()) {
            a.push_back(co_await lifo.get());
            b.push_back(co_await prio.get());
            c.push_back(co_await maxfirst.get());
        }
        CHECK(a == std::vector<int>{5, 1, 4, 1, 3});
        CHECK(b == std::vector<int>{1, 1, 3, 4, 5}); // smallest first, as heapq
        CHECK(c == std::vector<int>{5, 4, 3, 1, 1});
    }());
}

TEST_CASE("queue: move-only items", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<std::unique_ptr<int>> q(1);
        co_await q.put(std::make_unique<int>(7));
        auto p = co_await q.get();
        CHECK(*p == 7);
    }());
}

TEST_CASE("queue: shutdown wakes waiters; gets drain what is left", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q(1);
        auto getter = [](coio::queue<int>* qq) -> task<int> { co_return co_await qq->get(); };
        auto putter = [](coio::queue<int>* qq, int v) -> task<> { co_await qq->put(v); };
        auto g = coio::create_task(getter(&q));
        co_await coio::yield_now();
        q.shutdown();
        co_await outcome(g);
        CHECK(outcome_of(g) == "exception: coio: queue is shut down");
        CHECK_THROWS_AS(q.put_nowait(1), coio::queue_shutdown);
        CHECK(q.is_shutdown());

        coio::queue<int> q2(1);
        q2.put_nowait(1);
        auto p = coio::create_task(putter(&q2, 2));
        co_await coio::yield_now();
        q2.shutdown(); // not immediate: the item stays
        co_await outcome(p);
        CHECK(outcome_of(p) == "exception: coio: queue is shut down");
        const int left = co_await q2.get();
        CHECK(left == 1);
        auto r = co_await outcome(q2.get());
        CHECK(r == "exception: coio: queue is shut down");
        CHECK_THROWS_AS(q2.get_nowait(), coio::queue_shutdown);
    }());
}

TEST_CASE("queue: shutdown(immediate) drops the items and releases join", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q;
        q.put_nowait(1);
        q.put_nowait(2);
        auto joiner = [](coio::queue<int>* qq) -> task<> { co_await qq->join(); };
        auto j = coio::create_task(joiner(&q));
        co_await coio::yield_now();
        CHECK_FALSE(j.done());
        q.shutdown(true);
        CHECK(q.empty());
        co_await j;
        auto r = co_await outcome(q.get());
        CHECK(r == "exception: coio: queue is shut down");
        CHECK_THROWS_AS(q.task_done(), std::logic_error); // the drop counted them done
    }());
}

TEST_CASE("queue: wait_for(get) times out without losing a later item", "[sync][timeout]") {
    run_clean([]() -> task<> {
        coio::queue<int> q;
        auto r = co_await outcome(coio::wait_for(q.get(), 1ms));
        CHECK(r == "timeout_error");
        q.put_nowait(4);
        auto r2 = co_await outcome(coio::wait_for(q.get(), 10s));
        CHECK(r2 == "value 4");
    }());
}

TEST_CASE("queue: producers and consumers with cancellations lose no item", "[sync]") {
    run_clean([]() -> task<> {
        coio::queue<int> q(4);
        long consumed = 0;
        int count = 0;
        auto producer = [](coio::queue<int>* qq, int base) -> task<> {
            for (int i = 0; i < 500; ++i) {
                co_await qq->put(base + i);
            }
        };
        auto consumer = [](coio::queue<int>* qq, long* sum, int* n) -> task<> {
            for (;;) {
                const int v = co_await qq->get();
                *sum += v;
                ++*n;
            }
        };
        coio::task_group producers;
        for (int p = 0; p < 4; ++p) {
            producers.create_task(producer(&q, p * 1000));
        }
        std::vector<coio::task_handle<>> consumers;
        for (int c = 0; c < 3; ++c) {
            consumers.push_back(coio::create_task(consumer(&q, &consumed, &count)));
        }
        // Cancel and replace consumers while the items flow, including right
        // after a put handed them an item.
        for (int round = 0; round < 30; ++round) {
            co_await yields(3);
            auto& victim = consumers[static_cast<std::size_t>(round) % consumers.size()];
            victim.cancel();
            co_await outcome(victim);
            victim = coio::create_task(consumer(&q, &consumed, &count));
        }
        co_await producers.wait();
        for (int i = 0; i < 100'000 && count < 2000; ++i) {
            co_await coio::yield_now(); // the consumers drain the queue
        }
        for (auto& c : consumers) {
            c.cancel();
            co_await outcome(c);
        }
        long expected = 0;
        for (int p = 0; p < 4; ++p) {
            for (int i = 0; i < 500; ++i) {
                expected += p * 1000 + i;
            }
        }
        CHECK(count == 2000);
        CHECK(consumed == expected);
        CHECK(q.empty());
    }());
}

TEST_CASE("queue: a million immediate puts and gets, and a ping-pong, keep the stack flat",
          "[sync]") {
    // STYLE.md §3: operations that complete at once must not grow the stack
    // (they do not suspend), and waking a waiter always goes through the
    // ready queue (never a resume inside the waker).
    run_clean([]() -> task<> {
        coio::queue<int> q;
        long sum = 0;
        for (int i = 0; i < 1'000'000; ++i) {
            co_await q.put(i);
            sum += co_await q.get();
        }
        CHECK(sum == 999'999L * 1'000'000 / 2);

        coio::queue<int> ping(1);
        coio::queue<int> pong(1);
        auto echo = [](coio::queue<int>* in, coio::queue<int>* out) -> task<> {
            for (;;) {
                const int v = co_await in->get();
                if (v < 0) {
                    co_return;
                }
                co_await out->put(v + 1);
            }
        };
        auto e = coio::create_task(echo(&ping, &pong));
        int v = 0;
        for (int i = 0; i < 100'000; ++i) {
            co_await ping.put(v);
            v = co_await pong.get();
        }
        co_await ping.put(-1);
        co_await e;
        CHECK(v == 100'000);
    }());
}
