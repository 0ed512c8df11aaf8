// lib/net/server.cpp - the accept loop behind start_server.
#include "exception_text.hpp"

#include <coio/detail/timer.hpp>
#include <coio/detail/wait_queue.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/server.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>

namespace coio {
namespace detail {

struct server_state {
    socket m_listener;
    address m_local;
    server_options m_opts;
    connection_fn m_fn;
    event_loop* m_loop = nullptr;
    bool m_closed = false;
    server_stats m_stats;
    wait_queue m_closed_q; // serve_forever
    wait_queue m_idle_q;   // wait_closed
    class pause_awaiter* m_paused = nullptr;

    void wake_accept() noexcept;
    void connection_ended() noexcept {
        --m_stats.active;
        wake_accept(); // an fd was freed: a paused accept can retry now
        if (m_closed && m_stats.active == 0) {
            m_idle_q.notify_all();
        }
    }
};

// Sleep for the accept backoff, ended early by wake_accept() or by
// cancellation (loop teardown).
class pause_awaiter {
public:
    pause_awaiter(server_state& st, std::chrono::milliseconds d) : m_state(st) {
        m_timer.m_deadline = std::chrono::steady_clock::now() + d;
        m_timer.m_fire = &on_fire;
        m_timer.m_ctx = this;
    }
    pause_awaiter(const pause_awaiter&) = delete;
    pause_awaiter& operator=(const pause_awaiter&) = delete;
    ~pause_awaiter() { stop(); }

    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        m_slot = slot_of(h);
        if (m_slot != nullptr && m_slot->requested()) {
            m_cancelled = true;
            return false;
        }
        m_handle = h;
        m_state.m_loop->add_timer(m_timer);
        m_state.m_paused = this;
        if (m_slot != nullptr) {
            m_slot->attach(&on_cancel, this);
        }
        return true;
    }
    void await_resume() {
        if (m_slot != nullptr) {
            m_slot->detach();
            if (m_cancelled) {
                m_slot->consume();
                throw cancelled_error{};
            }
        }
    }

    void wake() noexcept {
        stop();
        m_state.m_loop->post(m_handle);
    }

private:
    void stop() noexcept {
        m_state.m_loop->remove_timer(m_timer);
        if (m_state.m_paused == this) {
            m_state.m_paused = nullptr;
        }
    }
    static void on_fire(timer_node& t) noexcept {
        auto* self = static_cast<pause_awaiter*>(t.m_ctx);
        if (self->m_state.m_paused == self) {
            self->m_state.m_paused = nullptr;
        }
        self->m_state.m_loop->post(self->m_handle);
    }
    static void on_cancel(void* ctx) noexcept {
        auto* self = static_cast<pause_awaiter*>(ctx);
        self->m_cancelled = true;
        self->wake();
    }

    server_state& m_state;
    timer_node m_timer;
    cancel_slot* m_slot = nullptr;
    std::coroutine_handle<> m_handle;
    bool m_cancelled = false;
};

void server_state::wake_accept() noexcept {
    if (m_paused != nullptr) {
        m_paused->wake();
    }
}

namespace {

bool out_of_resources(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// One connection's task. It is created without a name (a name string per
// connection would be the accept path's only allocation besides the frames);
// a handler's exception is reported here instead, naming the peer.
task<> serve_connection(std::shared_ptr<server_state> st, socket s, address peer) {
    struct ended {
        server_state& st;
        ~ended() { st.connection_ended(); }
    } guard{*st};
    std::exception_ptr failure;
    try {
        co_await st->m_fn(std::move(s));
    } catch (const cancelled_error&) {
        throw;
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        const std::string name = "connection from " + peer.to_string();
        const std::string msg = name + ": the handler raised " + describe_exception(failure);
        st->m_loop->call_exception_handler({msg, name, failure});
    }
}

task<> accept_loop(std::shared_ptr<server_state> st) {
    using namespace std::chrono_literals;
    std::chrono::milliseconds backoff{0};
    while (!st->m_closed) {
        accept_result r = co_await st->m_listener.accept();
        if (r.ok()) {
            backoff = 0ms;
            ++st->m_stats.accepted;
            if (st->m_opts.nodelay) {
                int one = 1;
                ::setsockopt(r.sock.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            ++st->m_stats.active;
            st->m_loop->create_task(serve_connection(st, std::move(r.sock), r.peer));
            continue;
        }
        if (st->m_closed || r.status == io_status::cancelled) {
            break;
        }
        ++st->m_stats.accept_errors;
        const int e = r.error.value();
        if (out_of_resources(e)) {
            // Level-triggered readiness would report the listener ready again
            // at once; waiting instead keeps the clients in the backlog until
            // an fd is free (asyncio pauses for 1 s; libuv closes a reserved fd).
            if (backoff == 0ms) {
                std::string msg = "accept on " + st->m_local.to_string() + ": " +
                                  r.error.message() +
                                  "; accepting paused until a connection closes (at most 1 s)";
                st->m_loop->call_exception_handler({msg, "accept", nullptr});
            }
            backoff = std::clamp(backoff * 2, 10ms, 1000ms);
            ++st->m_stats.accept_pauses;
            co_await pause_awaiter(*st, backoff);
            continue;
        }
        if (e == EBADF || e == EINVAL || e == ENOTSOCK || e == EOPNOTSUPP) {
            std::string msg = "accept on " + st->m_local.to_string() + ": " + r.error.message() +
                              "; the listening socket is unusable, server stopped";
            st->m_loop->call_exception_handler({msg, "accept", nullptr});
            break;
        }
        // ECONNABORTED, EPROTO, EPERM (firewall), ...: that one connection
        // failed; the listener is fine.
    }
}

task<> wait_until_closed(std::shared_ptr<server_state> st) {
    while (!st->m_closed) {
        co_await st->m_closed_q.wait();
    }
}

task<> wait_until_idle(std::shared_ptr<server_state> st) {
    while (!st->m_closed || st->m_stats.active > 0) {
        co_await st->m_idle_q.wait();
    }
}

} // namespace

task<server> start_server_impl(connection_fn fn, address at, server_options opts) {
    auto st = std::make_shared<server_state>();
    st->m_loop = &event_loop::running();
    st->m_fn = std::move(fn);
    st->m_opts = opts;
    st->m_listener = socket::open_tcp(at.family_kind());
    if (opts.reuse_address) {
        st->m_listener.set_reuse_address(true);
    }
    st->m_listener.bind(at);
    st->m_listener.listen(opts.backlog);
    st->m_local = st->m_listener.local_address();
    st->m_loop->create_task(accept_loop(st), "accept on " + st->m_local.to_string());
    co_return server(std::move(st));
}

} // namespace detail

address server::local_address() const {
    return m_state ? m_state->m_local : address{};
}

bool server::is_serving() const noexcept {
    return m_state && !m_state->m_closed;
}

server_stats server::stats() const noexcept {
    return m_state ? m_state->m_stats : server_stats{};
}

void server::close() noexcept {
    if (!m_state || m_state->m_closed) {
        return;
    }
    detail::server_state& st = *m_state;
    st.m_closed = true;
    st.m_listener.close(); // a pending accept completes as cancelled
    st.wake_accept();
    st.m_closed_q.notify_all();
    if (st.m_stats.active == 0) {
        st.m_idle_q.notify_all();
    }
}

task<> server::serve_forever() {
    return detail::wait_until_closed(m_state);
}

task<> server::wait_closed() {
    return detail::wait_until_idle(m_state);
}

} // namespace coio
