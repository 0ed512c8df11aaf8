// tests/introspect_test.cpp - current_task, all_tasks, task names, and
// format_tasks / dump_tasks: every task with its chain of awaits down to the
// operation it waits for (asyncio's pstree), on the backend named by
// COIO_BACKEND.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/introspect.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The line of the dump that starts with `prefix` (after any indent), or "".
std::string line_of(const std::string& dump, const std::string& prefix) {
    std::istringstream in(dump);
    std::string line;
    while (std::getline(in, line)) {
        const std::size_t start = line.find_first_not_of(' ');
        if (start != std::string::npos && line.compare(start, prefix.size(), prefix) == 0) {
            return line;
        }
    }
    return {};
}

coio::task<std::uint64_t> my_id() {
    coio::task_ref me = co_await coio::current_task();
    co_return me.valid() ? me.id() : 0;
}

coio::task<std::string> my_name_in_a_gather() {
    auto [a, b] = co_await coio::gather(my_id(), my_id());
    coio::task_ref me = co_await coio::current_task();
    CHECK(a == me.id());
    CHECK(b == me.id());
    std::uint64_t c = co_await coio::wait_for(my_id(), 1s);
    CHECK(c == me.id());
    co_return std::string(me.name());
}

coio::task<> names_and_current_task() {
    coio::task_ref main = co_await coio::current_task();
    CHECK(main.name() == "main");
    auto h = coio::create_task(my_name_in_a_gather());
    h.set_name("worker");
    std::string seen = co_await h;
    CHECK(seen == "worker");
    CHECK(h.name() == "worker");
    h.set_name("");
    CHECK(h.name() == "task-" + std::to_string(h.id()));
    coio::task_ref r = h; // from a task_handle
    CHECK(r.id() == h.id());
    CHECK(r.done());
    r.set_name("renamed");
    CHECK(h.name() == "renamed");
}

coio::task<> sleep_long() {
    co_await coio::sleep(10s);
}

coio::task<> all_tasks_in_order() {
    auto a = coio::create_task(sleep_long(), "a");
    auto b = coio::create_task(sleep_long(), "b");
    co_await coio::yield_now();
    std::vector<coio::task_ref> all = coio::all_tasks();
    REQUIRE(all.size() == 3);
    CHECK(all[0].name() == "main");
    CHECK(all[1].name() == "a");
    CHECK(all[2].name() == "b");
    a.cancel();
    b.cancel();
    CHECK(all[1].cancel() == true); // a second request is fine
    auto outcomes = co_await coio::gather(coio::return_exceptions, std::move(a), std::move(b));
    (void)outcomes;
    std::vector<coio::task_ref> left = coio::all_tasks();
    REQUIRE(left.size() == 1);
    CHECK(left[0] == all[0]);
}

// --- the chains format_tasks prints ---------------------------------------------

coio::task<> innermost() {
    co_await coio::sleep(10s);
}
coio::task<> middle() {
    co_await innermost();
}
coio::task<> outermost() {
    co_await middle();
}

coio::task<> wait_event(coio::event* e) {
    co_await e->wait();
}

coio::task<int> get_from(coio::queue<int>* q) {
    co_return co_await q->get();
}

coio::task<> gather_two(coio::queue<int>* q) {
    auto both = co_await coio::gather(coio::sleep(10s), get_from(q));
    (void)both;
}

coio::task<> read_socket(int fd) {
    coio::socket s(fd);
    coio::chunk_result r = co_await s.read_chunk();
    (void)r;
}

coio::task<> timed_wait(coio::event* e) {
    co_await coio::wait_for(wait_event(e), 10s);
}

coio::task<> await_handle(coio::task_handle<> h) {
    co_await h;
}

coio::task<> hold_lock(coio::lock* l) {
    auto g = co_await l->scoped();
    co_await coio::sleep(10s);
}

coio::task<> want_lock(coio::lock* l) {
    co_await l->acquire();
    l->release();
}

coio::task<> chains_in_the_dump() {
    coio::event ev;
    coio::queue<int> q;
    coio::lock lk;
    int sp[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == 0);
    auto sleeper = coio::create_task(outermost(), "sleeper");
    auto waiter = coio::create_task(wait_event(&ev), "waiter");
    auto gatherer = coio::create_task(gather_two(&q), "gatherer");
    auto reader = coio::create_task(read_socket(sp[0]), "reader");
    auto timed = coio::create_task(timed_wait(&ev), "timed");
    auto follower = coio::create_task(await_handle(sleeper), "follower");
    auto holder = coio::create_task(hold_lock(&lk), "holder");
    auto wanter = coio::create_task(want_lock(&lk), "wanter");
    for (int i = 0; i < 5; ++i) {
        co_await coio::yield_now();
    }
    const std::string dump = coio::format_tasks();
    INFO(dump);
    CHECK(contains(dump, "9 tasks on the "));
    CHECK(contains(line_of(dump, "task #1 'main'"), "(ready or running): chains_in_the_dump"));
    const std::string s = line_of(dump, "task #" + std::to_string(sleeper.id()) + " 'sleeper'");
    CHECK(contains(s, "(waiting): outermost -> middle -> innermost -> sleep "));
    CHECK(contains(s, " s left"));
    CHECK(contains(line_of(dump, "task #" + std::to_string(waiter.id()) + " 'waiter'"),
                   "(waiting): wait_event -> event wait"));
    CHECK(contains(line_of(dump, "task #" + std::to_string(gatherer.id()) + " 'gatherer'"),
                   "gather_two -> gather -> gather of 2"));
    CHECK(contains(line_of(dump, "[0] "), "sleep "));
    CHECK(contains(line_of(dump, "[1] "), "get_from -> queue get"));
    CHECK(contains(line_of(dump, "task #" + std::to_string(reader.id()) + " 'reader'"),
                   "read_socket -> read_chunk fd " + std::to_string(sp[0])));
    CHECK(contains(line_of(dump, "task #" + std::to_string(timed.id()) + " 'timed'"),
                   "timed_wait -> wait_for -> wait_for, "));
    CHECK(contains(line_of(dump, "task #" + std::to_string(follower.id()) + " 'follower'"),
                   "await_handle -> task #" + std::to_string(sleeper.id()) + " 'sleeper'"));
    CHECK(contains(line_of(dump, "task #" + std::to_string(holder.id()) + " 'holder'"),
                   "hold_lock -> sleep "));
    CHECK(contains(line_of(dump, "task #" + std::to_string(wanter.id()) + " 'wanter'"),
                   "want_lock -> lock acquire"));

    // A cancel delivered to an await that has not ended yet.
    waiter.cancel();
    const std::string after = coio::format_tasks();
    CHECK(contains(line_of(after, "task #" + std::to_string(waiter.id()) + " 'waiter'"),
                   "(cancel requested)"));

    for (auto* h : {&sleeper, &gatherer, &reader, &timed, &follower, &holder, &wanter}) {
        h->cancel();
    }
    auto all = co_await coio::gather(coio::return_exceptions, std::move(sleeper), std::move(waiter),
                                     std::move(gatherer), std::move(reader), std::move(timed),
                                     std::move(follower), std::move(holder), std::move(wanter));
    (void)all;
    ::close(sp[1]);
}

coio::task<> quick() {
    co_return;
}

coio::task<> half_done_gather(coio::event* e) {
    auto both = co_await coio::gather(quick(), wait_event(e));
    (void)both;
}

coio::task<> finished_child_and_sinks() {
    coio::event ev;
    auto g = coio::create_task(half_done_gather(&ev), "half");
    for (int i = 0; i < 3; ++i) {
        co_await coio::yield_now();
    }
    const std::string dump = coio::format_tasks();
    INFO(dump);
    CHECK(contains(line_of(dump, "[0] "), "[0] done"));
    CHECK(contains(line_of(dump, "[1] "), "wait_event -> event wait"));

    std::ostringstream os;
    coio::dump_tasks(os);
    CHECK(contains(os.str(), "'half' (waiting): half_done_gather -> gather -> gather of 2"));
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    coio::dump_tasks(f);
    std::rewind(f);
    char buf[4096] = {};
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    CHECK(contains(std::string(buf, n), "'half' (waiting)"));
    ev.set();
    co_await g;
}

} // namespace

TEST_CASE("task names can be set; current_task is the task a coroutine runs in", "[introspect]") {
    run_clean(names_and_current_task());
}

TEST_CASE("all_tasks lists the unfinished tasks in creation order", "[introspect]") {
    run_clean(all_tasks_in_order());
}

TEST_CASE("format_tasks shows each task's chain down to the operation it waits for",
          "[introspect]") {
    run_clean(chains_in_the_dump());
}

TEST_CASE("a gather's finished child shows as done; dump_tasks writes to FILE* and ostream",
          "[introspect]") {
    run_clean(finished_child_and_sinks());
}

TEST_CASE("all_tasks and format_tasks need a running loop", "[introspect]") {
    bool threw_all = false;
    bool threw_format = false;
    try {
        (void)coio::all_tasks();
    } catch (const std::logic_error&) {
        threw_all = true;
    }
    try {
        (void)coio::format_tasks();
    } catch (const std::logic_error&) {
        threw_format = true;
    }
    CHECK(threw_all);
    CHECK(threw_format);
}
