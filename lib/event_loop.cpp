// lib/event_loop.cpp - making, running and tearing down a loop, and one
// iteration (docs/design.md numbers the phases of run_once()). The roots'
// bookkeeping - starting, finishing, reaping - is in loop_roots.cpp.
#include "exception_text.hpp"
#include "loop_impl.hpp"

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace coio {

namespace {
thread_local event_loop* t_current = nullptr;

// Sets t_current (and t_time) for the duration of a drive or teardown.
class current_guard {
public:
    current_guard(event_loop* loop, const detail::loop_time* time)
        : m_prev(std::exchange(t_current, loop)), m_prev_time(detail::set_running_time(time)) {}
    current_guard(const current_guard&) = delete;
    current_guard& operator=(const current_guard&) = delete;
    ~current_guard() {
        t_current = m_prev;
        detail::set_running_time(m_prev_time);
    }

private:
    event_loop* m_prev;
    const detail::loop_time* m_prev_time;
};

std::string_view env_backend() {
    const char* v = std::getenv("COIO_BACKEND");
    return v != nullptr ? v : "";
}

} // namespace

event_loop::event_loop() : event_loop(env_backend()) {}

event_loop::event_loop(std::string_view backend)
    : m_core(*this), m_impl(std::make_unique<detail::loop_impl>(*this, m_core)) {
    m_core.m_impl = m_impl.get();
    // Allocated here, where running out of memory can still be thrown: a
    // loop's ready queue grows only under a load that needs more than 256.
    m_core.m_ready.reserve_initial();
    m_impl->m_backend = detail::make_backend(backend, *m_impl);
    m_impl->m_debug = detail::debug_from_env();
    set_shuffle_seed(detail::shuffle_seed_from_env());
}

event_loop::~event_loop() {
    detail::loop_impl& im = *m_impl;
    current_guard g(this, &m_impl->m_time);
    // 1. Cancel what is left and let it unwind normally (asyncio.run does the same).
    im.cancel_all();
    while ((im.m_tasks > 0 || im.m_external > 0) && run_once(nullptr)) {
    }
    im.close_resources();
    im.reap();
    // 2. Tasks stuck on something that can never complete: destroy their
    // frames. Awaiter destructors remove timers and forget() I/O, which waits
    // for the kernel to release the buffers first.
    std::size_t held = 0; // finished, but a task_handle still holds the root
    std::string held_names;
    while (im.m_roots != nullptr) {
        detail::root_base* r = im.m_roots;
        if (!r->m_done) {
            im.unlink(*r);
            r->m_loop = nullptr;
            if (r->m_refs == 1) {
                r->m_self.destroy();
            } else {
                // A task_handle still points at the frame; destroying it would
                // leave that handle dangling, so the frame is leaked instead.
                std::fprintf(stderr,
                             "coio: task '%s' never finished and a handle to it outlives its "
                             "loop; its frame is leaked\n",
                             r->name().c_str());
            }
            continue;
        }
        // Finished, held by a task_handle that outlives the loop: detach. Its
        // own frame is gone already (make_root); report the roots so that a
        // handle kept by mistake - in a cycle, say - does not go unseen.
        if (++held <= 8) {
            held_names += (held > 1 ? ", '" : "'") + r->name() + "'";
        }
        im.unlink(*r);
        r->m_loop = nullptr;
    }
    if (held > 0) {
        if (held > 8) {
            held_names += ", ...";
        }
        const std::string msg = "the loop closed while task_handles still hold " +
                                std::to_string(held) + " finished task(s): " + held_names +
                                " (their results stay until the handles go)";
        call_exception_handler({msg, {}, nullptr});
    }
    while (!m_core.m_ready.empty()) {
        (void)m_core.m_ready.pop(); // handles of frames destroyed above
    }
}

event_loop* event_loop::current() noexcept {
    return t_current;
}

event_loop& event_loop::running() {
    if (t_current == nullptr) {
        throw std::logic_error("coio: no event loop is running on this thread "
                               "(use coio::run or event_loop::run_until_complete)");
    }
    return *t_current;
}

std::string_view event_loop::backend_name() const noexcept {
    return m_impl->m_backend->name();
}

loop_stats event_loop::stats() const noexcept {
    const detail::loop_impl& im = *m_impl;
    loop_stats s;
    s.tasks = im.m_tasks;
    s.task_frames = im.m_frames;
    s.ready = m_core.m_ready.size() + im.m_callbacks.size();
    s.timers = im.m_timers.size();
    s.io_in_flight = im.m_in_flight;
    s.registrations = im.m_backend->registrations();
    s.buffers_out = im.m_backend->buffers_out();
    s.buffer_bytes = im.m_backend->buffer_bytes();
    s.iterations = im.m_iterations;
    s.wakeups = im.m_wakeups.load(std::memory_order_relaxed);
    s.ring_wakeups = im.m_ring_wakeups.load(std::memory_order_relaxed);
    return s;
}

void event_loop::call_soon(std::function<void()> f) {
    m_impl->m_callbacks.push_back(std::move(f));
}

void event_loop::set_exception_handler(std::function<void(const exception_context&)> handler) {
    m_impl->m_handler = std::move(handler);
}

void event_loop::call_exception_handler(const exception_context& ctx) noexcept {
    try {
        if (m_impl->m_handler) {
            m_impl->m_handler(ctx);
        } else {
            detail::default_exception_handler(ctx);
        }
    } catch (...) {
        std::fprintf(stderr, "coio: the exception handler threw while reporting: %.*s\n",
                     static_cast<int>(ctx.message.size()), ctx.message.data());
    }
}

void event_loop::stop() noexcept {
    detail::root_base* main = m_impl->m_main;
    if (main != nullptr && !main->m_done) {
        main->own_slot().request(); // as task.cancel(): while pending, no second delivery
    }
}

void event_loop::start_root(detail::root_base& r, std::string name) {
    if (!name.empty()) {
        try {
            r.set_name(std::move(name));
        } catch (...) {
            // Out of memory for the name: the root never started, so its
            // frame - and the task it holds - goes, and the caller gets the
            // exception (before, both frames leaked).
            r.m_self.destroy();
            throw;
        }
    }
    m_core.spawn(r);
}

void event_loop::drive(detail::root_base& main) {
    if (t_current != nullptr) {
        throw std::logic_error("coio: run_until_complete called while a loop is already running "
                               "on this thread (await the task instead)");
    }
    current_guard g(this, &m_impl->m_time);
    detail::loop_impl& im = *m_impl;
    struct main_guard {
        detail::loop_impl& im;
        ~main_guard() { im.m_main = nullptr; }
    } mg{im};
    im.m_main = &main;
    while (!main.m_done) {
        if (!run_once(&main)) {
            throw std::logic_error("coio: the main task waits for something that can never happen "
                                   "(no ready task, timer, I/O or cross-thread work is left)");
        }
    }
    // Like asyncio.run: cancel what is still running and let it finish. Also
    // run the callbacks still queued (main may have scheduled some just before
    // returning) and wait for thread-pool jobs to come back (they hold a
    // pointer to this loop), so that nothing is left when run() returns.
    im.cancel_all();
    while ((im.m_tasks > 0 || !im.m_callbacks.empty() || im.m_external > 0) && run_once(nullptr)) {
    }
    // call_later callbacks still waiting for their time are dropped, as
    // asyncio.run's loop.close() drops them.
    im.close_resources();
}

// One iteration: the phases are numbered in docs/design.md.
bool event_loop::run_once(const detail::root_base* main) {
    detail::loop_impl& im = *m_impl;
    ++im.m_iterations;
    im.take_remote();
    // 1. Pick the wait: none if work is ready, up to the next timer, or unbounded.
    detail::ready_queue& ready = m_core.m_ready;
    const bool work_ready = !ready.empty() || !im.m_callbacks.empty();
    std::chrono::nanoseconds timeout{-1};
    const detail::timer_node* jump_to = nullptr; // paused time: the timer to skip ahead to
    if (work_ready) {
        timeout = std::chrono::nanoseconds{0};
    } else if (const detail::timer_node* t = im.m_timers.top()) {
        // Compared before subtracting: deadline - now overflows for a
        // deadline near time_point::min() (sleep_until, timeout_at).
        const clock::time_point now = coio::now();
        timeout = t->m_deadline <= now ? std::chrono::nanoseconds{0} : t->m_deadline - now;
        if (im.m_time.paused && timeout.count() > 0) {
            // Never wait for a timer in real time: poll, and jump if idle.
            // A job of this loop's on another thread (to_thread) makes it
            // wait for that job instead; a task parked on a hand-off from
            // another thread or loop does not (as with Tokio's pause).
            const bool outside = im.m_external > im.m_hand_off_waits || im.m_remote_pending.load();
            const bool never = t->m_deadline == clock::time_point::max();
            timeout = outside || never ? std::chrono::nanoseconds{-1} : std::chrono::nanoseconds{0};
            jump_to = outside || never ? nullptr : t;
        }
    } else if (!im.can_progress()) {
        return false;
    }
    // 2. Wait for I/O: completions post their waiters to the ready queue.
    if (!work_ready) {
        im.wait_for_work(timeout); // lib/loop_wait.cpp
        im.take_remote();
    } else if (im.m_in_flight > 0) {
        im.m_backend->poll_ready(); // what completed meanwhile, without waiting
        im.take_remote();
    }
    if (jump_to != nullptr && ready.empty() && im.m_callbacks.empty() &&
        im.m_external == im.m_hand_off_waits && im.m_timers.top() == jump_to) {
        im.m_time.frozen = jump_to->m_deadline; // nothing else happened: time jumps
    }
    // 3. Fire due timers (in deadline order); they post their waiters.
    if (!im.m_timers.empty()) {
        im.fire_timers();
    }
    // 4. Run the callbacks, then every handle that is ready now. Handles posted
    //    while this runs wait for the next iteration, after the next I/O poll
    //    (so yield_now is asyncio.sleep(0): one whole iteration).
    if (!im.m_callbacks.empty()) {
        im.run_callbacks();
    }
    //    An I/O operation in the queue (its fd became ready) runs its
    //    syscall now and resumes its waiter if it completed.
    if (im.m_shuffle_seed != 0) [[unlikely]] {
        ready.shuffle_front(ready.size(), im.m_shuffle_state); // lib/loop_shuffle.cpp
    }
    for (std::size_t n = ready.size(); n > 0 && !(main != nullptr && main->m_done); --n) {
        void* e = ready.pop();
        std::coroutine_handle<> h;
        if (detail::ready_queue::is_op(e)) {
            h = im.run_ready(*detail::ready_queue::as_op(e));
        } else {
            h = std::coroutine_handle<>::from_address(e);
        }
        if (h) {
            m_core.reset_guards();
            if (im.m_debug) [[unlikely]] {
                im.debug_resume(h); // times the step
            } else {
                h.resume();
            }
        }
    }
    // 5. Reap detached tasks that finished: report exceptions, free frames.
    im.reap();
    return true;
}

std::string backend_name() {
    if (event_loop* l = event_loop::current()) {
        return std::string(l->backend_name());
    }
    std::string_view want = env_backend();
    if (!want.empty() && want != "auto") {
        return std::string(want == "uring" ? "io_uring" : want);
    }
    std::vector<std::string> usable = detail::usable_backends();
    return usable.empty() ? std::string() : usable.front();
}

std::vector<std::string> available_backends() {
    return detail::usable_backends();
}

namespace detail {

void default_exception_handler(const exception_context& ctx) noexcept {
    std::fprintf(stderr, "coio: %.*s\n", static_cast<int>(ctx.message.size()), ctx.message.data());
}

void ready_queue::reserve_initial() {
    if (m_capacity == 0) {
        m_buf.reset(new void*[256]);
        m_capacity = 256;
    }
}

void ready_queue::grow() noexcept {
    std::size_t cap = m_capacity == 0 ? 256 : m_capacity * 2;
    std::unique_ptr<void*[]> buf(new (std::nothrow) void*[cap]);
    if (!buf) {
        // A handle that cannot be queued would never run again (its task
        // hangs for ever, with nobody to tell): the documented end instead.
        std::fprintf(stderr, "coio: out of memory growing the ready queue to %zu entries\n", cap);
        std::abort();
    }
    for (std::size_t i = 0; i < size(); ++i) {
        buf[i] = m_buf[(m_head + i) & (m_capacity - 1)];
    }
    m_tail = size();
    m_head = 0;
    m_capacity = cap;
    m_buf = std::move(buf);
}

void ready_queue::remove_op(io_op* op) noexcept {
    void* const tagged = reinterpret_cast<char*>(op) + 1;
    for (std::size_t i = m_head; i != m_tail; ++i) {
        void*& e = m_buf[i & (m_capacity - 1)];
        if (e == tagged) {
            e = nullptr;
        }
    }
}

bool loop_core::submit(io_op& op) {
    if (m_impl->m_backend->submit(op)) {
        return true;
    }
    op.m_pending = true;
    ++m_impl->m_in_flight;
    return false;
}

void loop_core::cancel(io_op& op) noexcept {
    if (op.m_pending) {
        m_impl->m_backend->cancel(op);
    }
}

void loop_core::forget(io_op& op) noexcept {
    if (op.m_pending) {
        m_impl->m_backend->forget(op);
        op.m_pending = false;
        --m_impl->m_in_flight;
    }
}

void loop_core::close_fd(int fd) noexcept {
    m_impl->m_backend->close(fd);
}

void loop_core::add_timer(timer_node& t) {
    m_impl->m_timers.push(t);
}

void loop_core::remove_timer(timer_node& t) noexcept {
    if (t.queued()) {
        m_impl->m_timers.remove(t);
    }
}

void loop_core::attach(loop_resource& r) noexcept {
    loop_resource*& head = m_impl->m_resources;
    r.m_prev = nullptr;
    r.m_next = head;
    if (head != nullptr) {
        head->m_prev = &r;
    }
    head = &r;
    r.m_attached = true;
}

void loop_core::detach(loop_resource& r) noexcept {
    if (!r.m_attached) {
        return;
    }
    (r.m_prev != nullptr ? r.m_prev->m_next : m_impl->m_resources) = r.m_next;
    if (r.m_next != nullptr) {
        r.m_next->m_prev = r.m_prev;
    }
    r.m_prev = r.m_next = nullptr;
    r.m_attached = false;
}

void loop_core::external_begin(bool hand_off) noexcept {
    ++m_impl->m_external;
    m_impl->m_hand_off_waits += hand_off ? 1 : 0;
}

void loop_core::external_end(bool hand_off) noexcept {
    --m_impl->m_external;
    m_impl->m_hand_off_waits -= hand_off ? 1 : 0;
}

void loop_core::report(const exception_context& ctx) noexcept {
    m_owner->call_exception_handler(ctx);
}

std::size_t loop_impl::fire_timers() {
    std::size_t n = 0;
    if (m_timers.empty()) {
        return 0;
    }
    const auto now = coio::now();
    while (timer_node* t = m_timers.top()) {
        if (t->m_deadline > now) {
            break;
        }
        m_timers.remove(*t);
        t->m_fire(*t);
        ++n;
    }
    return n;
}

void loop_impl::take_remote() {
    if (!m_remote_pending.load(std::memory_order_acquire)) {
        return;
    }
    {
        std::lock_guard lock(m_remote_mutex);
        m_remote_taken.swap(m_remote); // both keep their capacity
        m_remote_pending.store(false, std::memory_order_relaxed);
    }
    struct clear_taken { // also if a push_back below throws: nothing is run twice
        std::vector<std::function<void()>>& v;
        ~clear_taken() { v.clear(); }
    } clear{m_remote_taken};
    for (auto& f : m_remote_taken) {
        m_callbacks.push_back(std::move(f));
    }
}

void loop_impl::run_callbacks() {
    for (std::size_t n = m_callbacks.size(); n > 0; --n) {
        std::function<void()> f = std::move(m_callbacks.front());
        m_callbacks.pop_front();
        try {
            if (m_debug) [[unlikely]] {
                debug_call(f); // times the callback
            } else {
                f();
            }
        } catch (...) {
            std::string msg =
                "callback raised: " + detail::describe_exception(std::current_exception());
            m_loop.call_exception_handler({msg, {}, std::current_exception()});
        }
    }
}

void loop_impl::close_resources() noexcept {
    while (m_resources != nullptr) {
        loop_resource& r = *m_resources;
        m_core.detach(r);
        r.m_close(r); // may free r
    }
}

bool loop_impl::can_progress() const noexcept {
    return m_in_flight > 0 || !m_timers.empty() || m_external > 0 || m_remote_pending.load();
}

} // namespace detail
} // namespace coio

namespace coio::detail {
loop_core& running_loop_core() {
    return core_of(event_loop::running());
}
} // namespace coio::detail
