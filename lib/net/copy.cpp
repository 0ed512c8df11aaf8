// lib/net/copy.cpp - copy_bidirectional (copy.hpp): two directions in one
// gather, sharing one lazily re-armed idle timer (watchdog.hpp).
#include "net/watchdog.hpp"

#include <coio/gather.hpp>
#include <coio/net/copy.hpp>

#include <tuple>

namespace coio {
namespace {

struct copy_state {
    copy_state(socket* a, socket* b, std::chrono::milliseconds idle)
        : m_a(a), m_b(b), m_idle(idle),
          m_dog([](void* s) noexcept { static_cast<copy_state*>(s)->on_deadline(); }, this) {
        if (m_idle.count() > 0) {
            m_active = coio::now();
            m_dog.arm_by(m_active + m_idle);
        }
    }

    void progress() noexcept {
        if (m_idle.count() > 0) {
            m_active = coio::now();
        }
    }

    void on_deadline() noexcept {
        const auto due = m_active + m_idle;
        if (coio::now() >= due) {
            m_timed_out = true;
            m_a->abort(); // the directions' operations complete as cancelled
            m_b->abort();
            return;
        }
        try {
            m_dog.arm_by(due);
        } catch (...) {
            // The heap just gave this node's slot back: cannot fail.
        }
    }

    socket* m_a;
    socket* m_b;
    std::chrono::milliseconds m_idle;
    detail::watchdog::clock::time_point m_active{};
    detail::watchdog m_dog;
    bool m_reset = false;
    bool m_timed_out = false;
};

// One direction: src -> dst until src ends; passes the end on (copy.hpp).
task<std::uint64_t> pipe(copy_state* st, socket* src, socket* dst) {
    std::uint64_t moved = 0;
    for (;;) {
        chunk_result r = co_await src->read_chunk();
        if (r.ok()) {
            st->progress();
            io_result w = co_await dst->write_all(r.data.view());
            moved += w.bytes;
            if (!w) {
                if (w.status != io_status::cancelled) { // not closed here: dst failed
                    st->m_reset = true;
                    src->abort();
                }
                co_return moved;
            }
            st->progress();
            continue;
        }
        if (r.status == io_status::eof) {
            (void)dst->shutdown(shutdown_how::write);
        } else if (r.status != io_status::cancelled) { // reset or error
            st->m_reset = true;
            dst->abort();
        }
        co_return moved;
    }
}

} // namespace

task<copy_result> copy_bidirectional(socket a, socket b, copy_options opts) {
    // Parameters live as long as the frame, which a task_handle may keep
    // after the copy ended: close the sockets when the body ends, however.
    struct closer {
        socket& a;
        socket& b;
        ~closer() {
            a.close();
            b.close();
        }
    } guard{a, b};
    copy_state st(&a, &b, opts.idle_timeout);
    auto [to_b, to_a] = co_await gather(pipe(&st, &a, &b), pipe(&st, &b, &a));
    copy_result out;
    out.a_to_b = to_b;
    out.b_to_a = to_a;
    out.reset = st.m_reset;
    out.timed_out = st.m_timed_out;
    co_return out;
}

} // namespace coio
