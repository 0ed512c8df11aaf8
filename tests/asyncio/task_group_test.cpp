// tests/asyncio/task_group_test.cpp - task_group, with_task_group,
// exception_group and shield.
//
// Ordering comes from yields and from children that sleep 10 s until they are
// cancelled, never from racing short sleeps. The tricky cases (first failure,
// failure while cancelling, cancel of the waiting parent, body failure) were
// checked against CPython 3.11's asyncio.TaskGroup.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using coio::task;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;
using log_t = std::vector<std::string>;

namespace {

constexpr auto long_sleep = 10s;

coio::event_loop& loop() {
    return coio::event_loop::running();
}

task<int> after_yields(int n, int v) {
    for (int i = 0; i < n; ++i) {
        co_await coio::yield_now();
    }
    co_return v;
}

task<int> fail_after_yields(int n, std::string what) {
    for (int i = 0; i < n; ++i) {
        co_await coio::yield_now();
    }
    throw std::runtime_error(what);
}

// Sleeps 10 s unless cancelled; logs the cancel.
task<int> sleeper(std::string name, log_t* log) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        log->push_back(name + " cancelled");
        throw;
    }
    co_return 0;
}

task<> raise_on_cancel(std::string what) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        throw std::out_of_range(what);
    }
}

task<> note(std::string what, log_t* log) {
    log->push_back(what);
    co_return;
}

// Collects what the loop's exception handler is told.
void record_reports(log_t* reports) {
    loop().set_exception_handler(
        [reports](const coio::exception_context& c) { reports->emplace_back(c.message); });
}

} // namespace

TEST_CASE("wait waits for every child and their values stay in the handles", "[task_group]") {
    run_clean([]() -> task<> {
        coio::task_group g;
        auto a = g.create_task(after_yields(3, 1));
        auto b = g.create_task(after_yields(1, 2));
        auto c = g.create_task(after_yields(0, 3));
        CHECK(g.size() == 3);
        auto r = co_await outcome(g.wait());
        CHECK(r == "done");
        CHECK(g.size() == 0);
        CHECK(a.result() + b.result() + c.result() == 6);
    }());
}

TEST_CASE("the first failure cancels the siblings and wait throws exception_group",
          "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::task_group g;
        auto s1 = g.create_task(sleeper("s1", &log));
        auto s2 = g.create_task(sleeper("s2", &log));
        auto bad = g.create_task(fail_after_yields(2, "boom"));
        auto r = co_await outcome(g.wait());
        CHECK(r == "exception_group: unhandled errors in a task_group (1 sub-exception): boom");
        CHECK(log.size() == 2);
        CHECK(s1.cancelled());
        CHECK(s2.cancelled());
        CHECK(bad.done());
        CHECK_FALSE(bad.cancelled());
    }());
}

TEST_CASE("exception_group keeps every failure, in completion order", "[task_group]") {
    // asyncio: [ValueError('a'), KeyError('on cancel')] - the second raised
    // while handling the cancel caused by the first.
    run_clean([]() -> task<> {
        coio::task_group g;
        g.create_task(raise_on_cancel("on cancel"));
        g.create_task(fail_after_yields(1, "a"));
        std::vector<std::exception_ptr> errors;
        try {
            co_await g.wait();
        } catch (const coio::exception_group& e) {
            errors = e.exceptions();
            CHECK(std::string(e.what()) ==
                  "unhandled errors in a task_group (2 sub-exceptions): a; on cancel");
        }
        REQUIRE(errors.size() == 2);
        CHECK_THROWS_AS(std::rethrow_exception(errors[0]), std::runtime_error);
        CHECK_THROWS_AS(std::rethrow_exception(errors[1]), std::out_of_range);
    }());
}

TEST_CASE("a child cancelled by someone else is not a failure", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::task_group g;
        auto s = g.create_task(sleeper("s", &log));
        auto v = g.create_task(after_yields(2, 5));
        co_await coio::yield_now();
        s.cancel();
        auto r = co_await outcome(g.wait());
        CHECK(r == "done");
        CHECK(s.cancelled());
        CHECK(v.result() == 5);
        CHECK_FALSE(g.cancelling());
    }());
}

TEST_CASE("a child created after a failure is cancelled before it runs", "[task_group]") {
    // Deliberate difference: asyncio raises RuntimeError("shutting down").
    run_clean([]() -> task<> {
        log_t log;
        coio::task_group g;
        g.create_task(fail_after_yields(0, "first"));
        co_await coio::yield_now(); // the failure happened
        CHECK(g.cancelling());
        auto late = g.create_task(note("late child ran", &log));
        auto r = co_await outcome(g.wait());
        CHECK(r == "exception_group: unhandled errors in a task_group (1 sub-exception): first");
        CHECK(late.cancelled());
        CHECK(log.empty());
    }());
}

TEST_CASE("children may create more children while the parent waits", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::task_group g;
        auto spawner = [](coio::task_group* grp, log_t* l) -> task<> {
            co_await coio::yield_now();
            grp->create_task(note("grandchild", l));
        };
        g.create_task(spawner(&g, &log));
        co_await g.wait();
        CHECK(log == log_t{"grandchild"});
        CHECK_THROWS_AS(g.create_task(note("too late", &log)), std::logic_error); // finished
    }());
}

TEST_CASE("cancelling the waiting parent cancels the children first", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        auto parent = [](log_t* l) -> task<> {
            coio::task_group g;
            g.create_task(sleeper("c1", l));
            g.create_task(sleeper("c2", l));
            co_await g.wait();
            l->push_back("not reached");
        };
        auto p = coio::create_task(parent(&log));
        co_await coio::yield_now(); // parent in wait()
        co_await coio::yield_now(); // children asleep
        p.cancel();
        auto r = co_await outcome(p);
        CHECK(r == "cancelled_error");
        CHECK(log.size() == 2); // both children finished before the parent
    }());
}

TEST_CASE("a real failure while the parent is cancelled wins; the cancel stays pending",
          "[task_group]") {
    // asyncio: ExceptionGroup([KeyError('on cancel')]) and t.cancelling() == 1.
    run_clean([]() -> task<> {
        log_t log;
        auto parent = [](log_t* l) -> task<> {
            coio::task_group g;
            g.create_task(raise_on_cancel("on cancel"));
            try {
                co_await g.wait();
            } catch (const coio::exception_group& e) {
                l->push_back(e.what());
            }
            co_await coio::yield_now(); // the pending cancel is delivered here
            l->push_back("not reached");
        };
        auto p = coio::create_task(parent(&log));
        co_await coio::yield_now();
        co_await coio::yield_now();
        p.cancel();
        auto r = co_await outcome(p);
        CHECK(r == "cancelled_error");
        CHECK(log == log_t{"unhandled errors in a task_group (1 sub-exception): on cancel"});
    }());
}

TEST_CASE("wait honours a pending cancel, with or without children running", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        auto parent = [](log_t* l) -> task<> {
            coio::task_group g;
            g.create_task(note("child ran", l));
            co_await g.wait(); // the first await sees the pending cancel
        };
        auto p = coio::create_task(parent(&log));
        p.cancel(); // before the parent runs
        auto r = co_await outcome(p);
        CHECK(r == "cancelled_error");
        CHECK(log.empty()); // the child was cancelled before it started

        auto empty_parent = []() -> task<> {
            coio::task_group g;
            co_await g.wait();
        };
        auto q = coio::create_task(empty_parent());
        q.cancel();
        auto r2 = co_await outcome(q);
        CHECK(r2 == "cancelled_error");
    }());
}

TEST_CASE("a group destroyed without wait cancels and detaches its children", "[task_group]") {
    log_t log;
    log_t reports;
    run_clean([](log_t* l, log_t* rep) -> task<> {
        record_reports(rep);
        auto parent = [](log_t* pl) -> task<> {
            coio::task_group g;
            g.create_task(sleeper("detached", pl));
            co_await coio::yield_now();
            throw std::logic_error("body failed before wait");
        };
        auto r = co_await outcome(parent(l));
        CHECK(r == "exception: body failed before wait");
        // The detached child is still running, owned by the loop (with main).
        CHECK(coio::event_loop::running().stats().tasks == 2);
        CHECK(l->empty());
        co_await coio::yield_now(); // it sees the cancel
        CHECK(coio::event_loop::running().stats().tasks == 1);
        CHECK(*l == log_t{"detached cancelled"});

        // Failures the group had collected go to the exception handler.
        auto failing_parent = []() -> task<> {
            coio::task_group g;
            g.create_task(fail_after_yields(0, "collected"));
            co_await coio::yield_now();
            co_await coio::yield_now();
            throw std::logic_error("body failed before wait");
        };
        auto r2 = co_await outcome(failing_parent());
        CHECK(r2 == "exception: body failed before wait");
    }(&log, &reports));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "task_group destroyed without wait(); a child raised: collected");
}

TEST_CASE("failures the group reported are not reported again by the loop", "[task_group]") {
    log_t reports;
    run_clean([](log_t* rep) -> task<> {
        record_reports(rep);
        coio::task_group g;
        g.create_task(fail_after_yields(0, "once"));
        auto r = co_await outcome(g.wait());
        CHECK(r == "exception_group: unhandled errors in a task_group (1 sub-exception): once");
    }(&reports));
    CHECK(reports.empty());
}

TEST_CASE("only one task may wait on a group", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::task_group g;
        auto s = g.create_task(sleeper("s", &log));
        auto waiter = [](coio::task_group* grp) -> task<> { co_await grp->wait(); };
        auto w = coio::create_task(waiter(&g));
        co_await coio::yield_now();
        auto r = co_await outcome(g.wait());
        CHECK(r == "exception: coio::task_group: wait() is already being awaited");
        s.cancel();
        co_await w;
    }());
}

TEST_CASE("a thousand children all finish", "[task_group]") {
    run_clean([]() -> task<> {
        coio::task_group g;
        std::vector<coio::task_handle<int>> hs;
        for (int i = 0; i < 1000; ++i) {
            hs.push_back(g.create_task(after_yields(i % 7, i)));
        }
        co_await g.wait();
        long sum = 0;
        for (auto& h : hs) {
            sum += h.result();
        }
        CHECK(sum == 999L * 1000 / 2);
    }());
}

TEST_CASE("with_task_group returns the body's value after the children", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        auto r = co_await outcome(coio::with_task_group([](coio::task_group& g) -> task<int> {
            g.create_task(after_yields(3, 0));
            g.create_task(after_yields(1, 0));
            co_return 11;
        }));
        CHECK(r == "value 11");
    }());
}

TEST_CASE("with_task_group: the first failure cancels the body and the siblings", "[task_group]") {
    // asyncio: ['s1 cancelled', 'body cancelled'], ExceptionGroup([ValueError('a')]).
    run_clean([]() -> task<> {
        log_t log;
        auto body = [](coio::task_group& g, log_t* l) -> task<> {
            g.create_task(sleeper("s1", l));
            g.create_task(fail_after_yields(2, "a"));
            co_await sleeper("body", l);
        };
        auto r = co_await outcome(
            coio::with_task_group([&log, body](coio::task_group& g) { return body(g, &log); }));
        CHECK(r == "exception_group: unhandled errors in a task_group (1 sub-exception): a");
        CHECK(log.size() == 2);
    }());
}

TEST_CASE("with_task_group: a body failure cancels the children and joins the group",
          "[task_group]") {
    // asyncio: ExceptionGroup([TypeError('body')]) after the child is cancelled.
    run_clean([]() -> task<> {
        log_t log;
        auto body = [](coio::task_group& g, log_t* l) -> task<> {
            g.create_task(sleeper("c", l));
            co_await coio::yield_now();
            throw std::invalid_argument("body");
        };
        auto r = co_await outcome(
            coio::with_task_group([&log, body](coio::task_group& g) { return body(g, &log); }));
        CHECK(r == "exception_group: unhandled errors in a task_group (1 sub-exception): body");
        CHECK(log == log_t{"c cancelled"});
    }());
}

TEST_CASE("with_task_group: cancelling the caller cancels body and children", "[task_group]") {
    run_clean([]() -> task<> {
        log_t log;
        auto caller = [](log_t* l) -> task<> {
            co_await coio::with_task_group([l](coio::task_group& g) -> task<> {
                return [](coio::task_group& grp, log_t* ll) -> task<> {
                    grp.create_task(sleeper("child", ll));
                    co_await sleeper("body", ll);
                }(g, l);
            });
        };
        auto p = coio::create_task(caller(&log));
        co_await coio::yield_now();
        co_await coio::yield_now();
        co_await coio::yield_now();
        p.cancel();
        auto r = co_await outcome(p);
        CHECK(r == "cancelled_error");
        CHECK(log.size() == 2);
    }());
}

// --- shield ----------------------------------------------------------------

TEST_CASE("cancelling a shielded await throws at once; the inner task runs on", "[shield]") {
    run_clean([]() -> task<> {
        log_t log;
        auto inner = coio::create_task(after_yields(5, 99));
        auto outer = [](coio::task_handle<int> h, log_t* l) -> task<> {
            try {
                co_await coio::shield(h);
            } catch (const coio::cancelled_error&) {
                l->push_back(h.done() ? "inner done" : "inner still running");
                throw;
            }
        };
        auto o = coio::create_task(outer(inner, &log));
        co_await coio::yield_now();
        o.cancel();
        auto r = co_await outcome(o);
        CHECK(r == "cancelled_error");
        CHECK(log == log_t{"inner still running"});
        CHECK_FALSE(inner.cancelled());
        auto v = co_await outcome(inner);
        CHECK(v == "value 99"); // the caller's handle still has the value
    }());
}

TEST_CASE("shield returns the value and propagates the error when not cancelled", "[shield]") {
    log_t reports;
    run_clean([](log_t* rep) -> task<> {
        record_reports(rep);
        auto a = co_await outcome(coio::shield(after_yields(2, 4)));
        CHECK(a == "value 4");
        auto b = co_await outcome(coio::shield(fail_after_yields(1, "inner failed")));
        CHECK(b == "exception: inner failed");
        auto c = co_await outcome(coio::shield(coio::yield_now())); // any awaitable
        CHECK(c == "done");
    }(&reports));
    CHECK(reports.empty()); // retrieved through the shield
}

TEST_CASE("an inner failure nobody awaits after the cancel goes to the handler", "[shield]") {
    log_t reports;
    run_clean([](log_t* rep) -> task<> {
        record_reports(rep);
        auto outer = []() -> task<> { co_await coio::shield(fail_after_yields(3, "late")); };
        auto o = coio::create_task(outer());
        co_await coio::yield_now();
        o.cancel();
        auto r = co_await outcome(o);
        CHECK(r == "cancelled_error");
        CHECK(rep->empty());
        for (int i = 0; i < 100 && rep->empty(); ++i) {
            co_await coio::yield_now(); // the inner task fails and is reaped
        }
    }(&reports));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].find("late") != std::string::npos);
}

TEST_CASE("wait_for around shield times out while the shielded work goes on", "[shield][timeout]") {
    run_clean([]() -> task<> {
        auto work = coio::create_task(after_yields(20, 7));
        auto r = co_await outcome(coio::wait_for(coio::shield(work), 0ms));
        CHECK(r == "timeout_error");
        CHECK_FALSE(work.done());
        auto v = co_await outcome(work);
        CHECK(v == "value 7");
    }());
}
