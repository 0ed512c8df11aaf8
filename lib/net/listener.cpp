// lib/net/listener.cpp - the accept loop and connection tasks shared by
// start_server and start_unix_server (listener.hpp).
#include "net/listener.hpp"

#include "exception_text.hpp"

#include <coio/detail/cancel_listener.hpp>
#include <coio/detail/io_awaiter.hpp>
#include <coio/detail/timer.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

namespace coio::detail {

// Sleep for the accept backoff, ended early by wake_accept() or by
// cancellation (loop teardown).
class pause_awaiter {
public:
    pause_awaiter(listener_state& st, std::chrono::milliseconds d) : m_state(st) {
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
        if (m_cancel.pending(h)) {
            return false;
        }
        m_handle = h;
        m_state.m_loop->add_timer(m_timer);
        m_state.m_paused = this;
        m_cancel.listen(&on_cancel, this);
        return true;
    }
    void await_resume() { m_cancel.finish(); }

    // An fd was freed or the server closed: end the pause now.
    void wake() noexcept { end(); }

private:
    // Ends the pause once, whichever comes first - the timer, wake(), a
    // cancel request - and makes the others no-ops: the timer is removed, the
    // server forgets this pause and the cancel hook is detached before the
    // coroutine is posted, so it is never posted twice (a cancel arriving
    // after a wake, at loop teardown say, finds no hook).
    void end() noexcept {
        if (m_ended) {
            return;
        }
        m_ended = true;
        stop();
        m_cancel.stop();
        m_state.m_loop->post(m_handle);
    }
    void stop() noexcept {
        m_state.m_loop->remove_timer(m_timer);
        if (m_state.m_paused == this) {
            m_state.m_paused = nullptr;
        }
    }
    static void on_fire(timer_node& t) noexcept { static_cast<pause_awaiter*>(t.m_ctx)->end(); }
    static void on_cancel(void* ctx) noexcept {
        auto* self = static_cast<pause_awaiter*>(ctx);
        self->m_cancel.mark();
        self->end();
    }

    listener_state& m_state;
    timer_node m_timer;
    cancel_listener m_cancel;
    std::coroutine_handle<> m_handle;
    bool m_ended = false;
};

void listener_state::wake_accept() noexcept {
    if (m_paused != nullptr) {
        m_paused->wake();
    }
}

void listener_state::connection_ended() noexcept {
    --m_stats.active;
    wake_accept(); // an fd was freed: a paused accept can retry now
    if (m_closed && m_stats.active == 0) {
        m_idle_q.notify_all();
    }
}

void listener_state::close() noexcept {
    if (m_closed) {
        return;
    }
    m_closed = true;
    m_listener.close(); // a pending accept completes as cancelled
    wake_accept();
    m_closed_q.notify_all();
    if (m_stats.active == 0) {
        m_idle_q.notify_all();
    }
}

namespace {

// Accept into a sockaddr_storage, which has room for a whole sockaddr_un, so
// the kernel never truncates a Unix peer's name and the reported length
// never exceeds the buffer. A TCP peer goes into the result's address; a
// Unix peer is left out (coio::address holds IPv4/IPv6 only, and a Unix
// client is usually unbound anyway). One awaiter type for both kinds of
// listener, so the accept loop has one co_await.
class listener_accept_awaiter : public io_awaiter_base {
public:
    listener_accept_awaiter(int fd, bool unix_peer) noexcept : m_unix(unix_peer) {
        m_op.m_code = op_code::accept;
        m_op.m_fd = fd;
        m_op.m_addr = &m_peer;
        m_op.m_addr_len = &m_len;
    }
    accept_result await_resume() {
        const int r = take_result();
        accept_result out;
        if (r >= 0) {
            out.sock = socket(r);
            if (!m_unix && m_len <= address::capacity()) {
                std::memcpy(out.peer.data(), &m_peer, m_len);
                out.peer.set_size(m_len);
            }
            return out;
        }
        set_failure(out, r);
        return out;
    }

private:
    sockaddr_storage m_peer{};
    std::uint32_t m_len = sizeof(sockaddr_storage);
    bool m_unix;
};

bool out_of_resources(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// One connection's task. It is created without a name (a name string per
// connection would be the accept path's only allocation besides the frames);
// a handler's exception is reported here instead, naming the peer (TCP) or
// the listening path (Unix).
task<> serve_connection(std::shared_ptr<listener_state> st, socket s, address peer) {
    struct ended {
        listener_state& st;
        ~ended() { st.connection_ended(); }
    } guard{*st};
    std::exception_ptr failure;
    try {
        co_await st->m_fn(std::move(s), peer);
    } catch (const cancelled_error&) {
        throw;
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        const std::string name =
            st->m_unix ? "connection on " + st->m_display : "connection from " + peer.to_string();
        const std::string msg = name + ": the handler raised " + describe_exception(failure);
        st->m_loop->call_exception_handler({msg, name, failure});
    }
}

task<> accept_loop(std::shared_ptr<listener_state> st) {
    using namespace std::chrono_literals;
    std::chrono::milliseconds backoff{0};
    while (!st->m_closed) {
        accept_result r =
            co_await listener_accept_awaiter(st->m_listener.native_handle(), st->m_unix);
        if (r.ok()) {
            backoff = 0ms;
            ++st->m_stats.accepted;
            if (st->m_nodelay) {
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
                std::string msg = "accept on " + st->m_display + ": " + r.error.message() +
                                  "; accepting paused until a connection closes (at most 1 s)";
                st->m_loop->call_exception_handler({msg, "accept", nullptr});
            }
            backoff = std::clamp(backoff * 2, 10ms, 1000ms);
            ++st->m_stats.accept_pauses;
            co_await pause_awaiter(*st, backoff);
            continue;
        }
        if (e == EBADF || e == EINVAL || e == ENOTSOCK || e == EOPNOTSUPP) {
            std::string msg = "accept on " + st->m_display + ": " + r.error.message() +
                              "; the listening socket is unusable, server stopped";
            st->m_loop->call_exception_handler({msg, "accept", nullptr});
            break;
        }
        // ECONNABORTED, EPROTO, EPERM (firewall), ...: that one connection
        // failed; the listener is fine.
    }
}

} // namespace

void start_accepting(std::shared_ptr<listener_state> st) {
    event_loop* loop = st->m_loop;
    std::string name = "accept on " + st->m_display;
    loop->create_task(accept_loop(std::move(st)), std::move(name));
}

task<> wait_until_closed(std::shared_ptr<listener_state> st) {
    while (!st->m_closed) {
        co_await st->m_closed_q.wait();
    }
}

task<> wait_until_idle(std::shared_ptr<listener_state> st) {
    while (!st->m_closed || st->m_stats.active > 0) {
        co_await st->m_idle_q.wait();
    }
}

} // namespace coio::detail
