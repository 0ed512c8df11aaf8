// lib/net/listener.cpp - the accept loops and connection tasks shared by
// start_server and start_unix_server (listener.hpp), and the server methods
// both expose (detail::server_base).
#include "net/listener.hpp"

#include "exception_text.hpp"
#include "net/socket_ops.hpp"
#include "sys/socket.hpp"

#include <coio/detail/cancel_listener.hpp>
#include <coio/detail/io_awaiter.hpp>
#include <coio/detail/root.hpp>
#include <coio/detail/timer.hpp>

#include <sys/socket.h> // sockaddr_storage: the accept's address area

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace coio::detail {

// Sleep for the accept backoff, ended early by wake_accept() or by
// cancellation (loop teardown).
class pause_awaiter {
public:
    pause_awaiter(listener_state& st, listening_socket& ls, std::chrono::milliseconds d)
        : m_state(st), m_listening(ls) {
        m_timer.m_deadline = coio::now() + d;
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
        core_of(*m_state.m_loop).add_timer(m_timer);
        m_listening.m_paused = this;
        m_cancel.listen(hook_of<&on_cancel, &describe>, this);
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
        core_of(*m_state.m_loop).post(m_handle);
    }
    void stop() noexcept {
        core_of(*m_state.m_loop).remove_timer(m_timer);
        if (m_listening.m_paused == this) {
            m_listening.m_paused = nullptr;
        }
    }
    static void on_fire(timer_node& t) noexcept { static_cast<pause_awaiter*>(t.m_ctx)->end(); }
    static void describe(const void* /*ctx*/, await_printer& out) {
        out.text("accept paused (at the connection limit, or out of fds)");
    }
    static void on_cancel(void* ctx) noexcept {
        auto* self = static_cast<pause_awaiter*>(ctx);
        self->m_cancel.mark();
        self->end();
    }

    listener_state& m_state;
    listening_socket& m_listening;
    timer_node m_timer;
    cancel_listener m_cancel;
    std::coroutine_handle<> m_handle;
    bool m_ended = false;
};

void listener_state::wake_accept() noexcept {
    for (listening_socket& ls : m_listeners) {
        if (ls.m_paused != nullptr) {
            ls.m_paused->wake();
        }
    }
    m_room_q.notify_all();
}

void listener_state::connection_ended() noexcept {
    --m_stats.active;
    wake_accept(); // an fd and a place were freed: a paused or waiting accept can go on
    if (m_closed && m_stats.active == 0) {
        m_idle_q.notify_all();
    }
}

void listener_state::link(connection_node& n) noexcept {
    n.m_prev = nullptr;
    n.m_next = m_clients;
    if (m_clients != nullptr) {
        m_clients->m_prev = &n;
    }
    m_clients = &n;
    n.m_linked = true;
}

void listener_state::unlink(connection_node& n) noexcept {
    if (!n.m_linked) {
        return;
    }
    (n.m_prev != nullptr ? n.m_prev->m_next : m_clients) = n.m_next;
    if (n.m_next != nullptr) {
        n.m_next->m_prev = n.m_prev;
    }
    n.m_prev = n.m_next = nullptr;
    n.m_linked = false;
}

void listener_state::close() noexcept {
    if (m_closed) {
        return;
    }
    m_closed = true;
    for (listening_socket& ls : m_listeners) {
        ls.m_sock.close(); // a pending accept completes as cancelled
    }
    wake_accept();
    m_closed_q.notify_all();
    if (m_stats.active == 0) {
        m_idle_q.notify_all();
    }
    on_close();
}

namespace {

// Reset a raw-socket handler's connection. The socket belongs to the
// handler's frame, which may have closed it, and its fd number may then
// belong to something else: only a socket whose peer is still the one
// accepted gets SO_LINGER 0 (it resets when the handler's frame closes it).
void abort_raw(const connection_node& n) noexcept {
    if (n.m_peer.empty()) {
        return; // Unix: no reset
    }
    address now;
    std::uint32_t len = address::capacity();
    if (sys::peer_name(n.m_fd, now.data(), len) == 0 && len == n.m_peer.size()) {
        now.set_size(len);
        if (now == n.m_peer) {
            (void)sys::set_linger_reset(n.m_fd);
        }
    }
}

} // namespace

void listener_state::close_clients(bool abort) noexcept {
    ++m_epoch;
    (abort ? m_abort_epoch : m_close_epoch) = m_epoch;
    // Cancelling only asks: no task runs and no node is unlinked before the
    // next loop iteration, so the walk sees a stable list.
    for (connection_node* n = m_clients; n != nullptr; n = n->m_next) {
        if (n->m_stream != nullptr) {
            if (abort) {
                abort_stream(*n->m_stream);
            } else {
                close_stream(*n->m_stream);
            }
        } else if (abort) {
            abort_raw(*n);
        }
        if (n->m_slot != nullptr) {
            n->m_slot->request();
        }
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
        m_op.m_arg.peer = io_sockaddr{&m_peer, &m_len};
    }
    listener_accept_awaiter(listener_accept_awaiter&&) = delete; // awaited where it is made
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

// The cancel slot of the awaiting chain: the connection task's own, which
// close_clients() requests. Does not suspend.
class current_slot {
public:
    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        m_slot = slot_of(h);
        return false;
    }
    [[nodiscard]] cancel_slot* await_resume() const noexcept { return m_slot; }

private:
    cancel_slot* m_slot = nullptr;
};

// A handler's exception, to the loop's exception handler. A plain function:
// its strings live on the stack, not in every connection's frame.
void report_failure(listener_state& st, const address& peer, std::exception_ptr failure) {
    const std::string name = st.m_unix ? "connection on " + st.m_listeners[0].m_display
                                       : "connection from " + peer.to_string();
    const std::string msg = name + ": the handler raised " + describe_exception(failure);
    st.m_loop->call_exception_handler({msg, name, failure});
}

// What a connection's task keeps of its connection, moved into the frame
// as its one parameter besides the socket: the node (with the peer), the
// close_clients epoch when it was accepted, and a counted reference to the
// server's state. The first such reference makes the state hold itself
// (m_keepalive) and the last one lets go: a pointer per connection, not a
// shared_ptr. Moved only before the node is linked (into the frame).
class connection_ref {
public:
    connection_ref(const std::shared_ptr<listener_state>& st, const address& peer,
                   std::uint32_t epoch) noexcept
        : m_state(st.get()), m_epoch(epoch) {
        m_node.m_peer = peer;
        if (st->m_task_refs++ == 0) {
            st->m_keepalive = st;
        }
    }
    connection_ref(connection_ref&& o) noexcept
        : m_state(std::exchange(o.m_state, nullptr)), m_epoch(o.m_epoch) {
        m_node.m_peer = o.m_node.m_peer;
    }
    connection_ref(const connection_ref&) = delete;
    connection_ref& operator=(const connection_ref&) = delete;
    connection_ref& operator=(connection_ref&&) = delete;
    ~connection_ref() {
        if (m_state != nullptr && --m_state->m_task_refs == 0) {
            // Last: may destroy the state (nothing here uses it after).
            std::shared_ptr<listener_state> last = std::move(m_state->m_keepalive);
        }
    }

    listener_state* m_state;
    connection_node m_node;
    std::uint32_t m_epoch;
};

// One connection's task. It is created without a name (a name string per
// connection would be the accept path's only allocation besides the frames);
// a handler's exception is reported here instead, naming the peer (TCP) or
// the listening path (Unix).
// The connection task is its own root (loop_core::spawn): one frame per
// connection besides the handler's, not a root around a task.
root_coroutine<void> serve_connection(connection_ref c, socket s) {
    listener_state& st = *c.m_state;
    // Once the task has started, the connection ends when the body does
    // (return, exception, or the frame destroyed at loop teardown). A frame
    // destroyed before it started was never counted as started: its
    // connection_ref only lets go of the state.
    struct ended {
        connection_ref& c;
        explicit ended(connection_ref& r) noexcept : c(r) {}
        ended(const ended&) = delete;
        ended& operator=(const ended&) = delete;
        ~ended() {
            c.m_state->unlink(c.m_node);
            if (c.m_node.m_stream != nullptr) {
                unlink_stream(*c.m_node.m_stream);
            }
            c.m_state->connection_ended();
        }
    } guard(c);
    if (st.m_abort_epoch > c.m_epoch) {
        s.abort(); // abort_clients() came before this task started
        co_return;
    }
    if (st.m_close_epoch > c.m_epoch) {
        co_return; // close_clients(): s closes here
    }
    c.m_node.m_slot = co_await current_slot();
    c.m_node.m_fd = s.native_handle();
    st.link(c.m_node);
    try {
        co_await st.m_fn(std::move(s), c.m_node);
    } catch (const cancelled_error&) {
        throw;
    } catch (...) {
        report_failure(st, c.m_node.m_peer, std::current_exception());
    }
}

// A connection's task could not be made (std::bad_alloc): the client's
// socket is closed, and the loop's exception handler hears of it. The
// message is built if there is memory for it, else a fixed one is used.
void report_no_memory(listener_state& st, const listening_socket& ls, const address& peer,
                      const std::exception_ptr& e) noexcept {
    constexpr std::string_view fixed =
        "accept: out of memory for a connection's task; that connection was closed";
    try {
        const std::string msg = "accept on " + ls.m_display + ": out of memory for the task of " +
                                (st.m_unix ? std::string("a connection") : peer.to_string()) +
                                "; that connection was closed";
        st.m_loop->call_exception_handler({msg, "accept", e});
    } catch (...) {
        st.m_loop->call_exception_handler({fixed, "accept", e});
    }
}

// Waits (at max_connections) until a connection ends, or - with
// `until_closed` - the server closes.
task<> wait_for_room(listener_state* st, bool until_closed) {
    ++st->m_stats.limit_waits;
    while (st->at_limit() && !(until_closed && st->m_closed)) {
        co_await st->m_room_q.wait();
    }
}

task<> accept_loop(std::shared_ptr<listener_state> st, std::size_t index) {
    using namespace std::chrono_literals;
    listening_socket& ls = st->m_listeners[index];
    std::chrono::milliseconds backoff{0};
    while (!st->m_closed) {
        if (st->at_limit()) {
            co_await wait_for_room(st.get(), true); // clients wait in the backlog
            continue;
        }
        accept_result r = co_await listener_accept_awaiter(ls.m_sock.native_handle(), st->m_unix);
        if (r.ok()) {
            backoff = 0ms;
            ++st->m_stats.accepted;
            const std::uint32_t epoch = st->m_epoch; // close_clients from now on applies
            if (st->at_limit()) {
                // Another socket's connection took the last place while this
                // accept waited: this client waits, accepted, for the next.
                co_await wait_for_room(st.get(), false);
            }
            ++st->m_stats.active;
            if (st->m_nodelay) {
                (void)sys::set_option(r.sock.native_handle(), sys::sockopt::nodelay, 1);
            }
            bool no_memory = false;
            try {
                core_of(*st->m_loop)
                    .spawn(serve_connection(connection_ref(st, r.peer, epoch), std::move(r.sock))
                               .m_h.promise());
            } catch (const std::bad_alloc&) {
                // No memory for the connection's frame: that client's socket
                // has closed as the exception unwound; the server goes on.
                st->connection_ended();
                report_no_memory(*st, ls, r.peer, std::current_exception());
                no_memory = true;
            }
            if (no_memory) {
                // Memory may take a moment to come back: accept again after
                // a short pause rather than close client after client.
                co_await pause_awaiter(*st, ls, 10ms);
            }
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
                std::string msg = "accept on " + ls.m_display + ": " + r.error.message() +
                                  "; accepting paused until a connection closes (at most 1 s)";
                st->m_loop->call_exception_handler({msg, "accept", nullptr});
            }
            backoff = std::clamp(backoff * 2, 10ms, 1000ms);
            ++st->m_stats.accept_pauses;
            co_await pause_awaiter(*st, ls, backoff);
            continue;
        }
        if (e == EBADF || e == EINVAL || e == ENOTSOCK || e == EOPNOTSUPP) {
            std::string msg = "accept on " + ls.m_display + ": " + r.error.message() +
                              "; the listening socket is unusable, stopped accepting on it";
            st->m_loop->call_exception_handler({msg, "accept", nullptr});
            break;
        }
        // ECONNABORTED, EPROTO, EPERM (firewall), ...: that one connection
        // failed; the listener is fine.
    }
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

} // namespace

void start_accepting(const std::shared_ptr<listener_state>& st) {
    event_loop* loop = st->m_loop;
    for (std::size_t i = 0; i < st->m_listeners.size(); ++i) {
        std::string name = "accept on " + st->m_listeners[i].m_display;
        loop->create_task(accept_loop(st, i), std::move(name));
    }
}

server_base::server_base(std::shared_ptr<listener_state> st) noexcept : m_state(std::move(st)) {}

bool server_base::is_serving() const noexcept {
    return m_state && !m_state->m_closed;
}

server_stats server_base::stats() const noexcept {
    return m_state ? m_state->m_stats : server_stats{};
}

void server_base::close() noexcept {
    if (m_state) {
        m_state->close();
    }
}

void server_base::close_clients() noexcept {
    if (m_state) {
        m_state->close_clients(false);
    }
}

void server_base::abort_clients() noexcept {
    if (m_state) {
        m_state->close_clients(true);
    }
}

task<> server_base::serve_forever() {
    if (!m_state) {
        throw std::logic_error("coio: serve_forever on an empty server");
    }
    return wait_until_closed(m_state);
}

task<> server_base::wait_closed() {
    if (!m_state) {
        throw std::logic_error("coio: wait_closed on an empty server");
    }
    return wait_until_idle(m_state);
}

} // namespace coio::detail
