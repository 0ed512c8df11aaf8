// coio/channel.hpp - a bounded multi-producer, single-consumer channel
// between threads and loops (Tokio's mpsc::channel).
//
//   auto [tx, rx] = coio::channel<job>(64);      // capacity >= 1
//   // producers: tasks of any loop, or plain threads; tx is copyable
//   bool ok = co_await tx.send(j);               // waits while full (back-pressure)
//   bool ok2 = tx.send_blocking(j);              // a plain thread blocks instead
//   coio::channel_status st = tx.try_send(std::move(j)); // never waits
//   // the consumer: one task (or one plain thread) at a time; rx is move-only
//   std::optional<job> j = co_await rx.recv();   // nullopt: the end
//
// Delivery: values come out in the order the sends completed; a send that
// had to wait keeps its place (parked senders are admitted in FIFO order).
// No allocation per value beyond the value's own: the buffer is a ring
// allocated once. A waiting task is woken by its own loop (at once when the
// other side runs on the same loop's thread, otherwise through that loop's
// call_soon_threadsafe); a task waiting on a channel counts as outside work
// of its loop, which waits for the wake-up instead of deciding nothing can
// happen. No lock is held while anything runs.
//
// Closing (Tokio's rules):
//  - every sender gone: recv() returns what is buffered, then nullopt;
//  - rx.close(): further sends fail (false / channel_status::closed), parked
//    sends are woken with false; recv() still returns what is buffered;
//  - the receiver destroyed: the same, and buffered values are destroyed.
//  send() returning false means the value was not delivered (it is
//  destroyed with the awaiter); try_send leaves it with the caller.
//
// Cancellation (send and recv are cancellation points; asyncio's rule for
// hand-offs): cancelled_error means it did not happen. A recv cancelled
// after a value was handed to it gives the value back - it is still the
// next one - so race(rx.recv(), stop.wait()) loses nothing. A send whose
// value was taken before its cancel arrived returns true and the cancel
// stays pending for the next await (cancel_slot rule 3): the value WAS sent.
//
// Threads: senders may be used from any thread; a receiver from one thread
// at a time, with one recv() at a time (std::logic_error otherwise). The
// blocking forms throw std::logic_error on a loop's thread (they would stall
// it). Objects must outlive their awaits. T must be nothrow-movable.
#pragma once

#include <coio/detail/channel_state.hpp>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

namespace coio {

template <class T>
class channel_receiver;

template <class T>
class channel_sender {
public:
    channel_sender(const channel_sender& o) noexcept : m_st(o.m_st) {
        if (m_st) {
            m_st->add_sender();
        }
    }
    channel_sender(channel_sender&& o) noexcept = default;
    channel_sender& operator=(channel_sender o) noexcept {
        std::swap(m_st, o.m_st);
        return *this;
    }
    ~channel_sender() { reset(); }

    // Drop this sender now (the last one gone ends the receiver's stream).
    void reset() noexcept {
        if (m_st && m_st->last_sender_gone()) {
            m_st->senders_gone();
        }
        m_st.reset();
    }

    class send_awaiter {
    public:
        send_awaiter(detail::channel_state<T>& st, T v) : m_st(&st), m_value(std::move(v)) {}
        send_awaiter(send_awaiter&&) noexcept = default;
        send_awaiter& operator=(const send_awaiter&) = delete;

        static bool await_ready() noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            // Prepared first: parking happens under the channel's mutex.
            if (!m_wait.prepare(h)) {
                m_done = false; // await_resume throws cancelled_error
                return false;
            }
            std::optional<bool> r = m_st->send_or_park(m_wait, m_value);
            if (r) {
                m_done = *r;
                m_immediate = true;
                return false;
            }
            m_wait.listen();
            return true;
        }
        // True: sent. False: the channel is closed (nothing was sent).
        // Throws cancelled_error if cancelled before the value was taken.
        bool await_resume() {
            if (m_immediate) {
                return m_done;
            }
            m_wait.finish();
            return m_wait.m_sent;
        }

    private:
        detail::channel_state<T>* m_st;
        T m_value;
        detail::send_waiter<T> m_wait;
        bool m_done = false;
        bool m_immediate = false;
    };

    // Send `v`, waiting while the channel is full (see above). The value is
    // moved into the awaiter.
    [[nodiscard]] send_awaiter send(T v) { return send_awaiter(st(), std::move(v)); }
    // Send without waiting; moves from `v` only when it returns ok.
    channel_status try_send(T&& v) { return st().try_send(v); }
    channel_status try_send(const T& v) {
        T copy(v);
        return st().try_send(copy);
    }
    // From a plain thread: block while full. False if the channel is closed.
    bool send_blocking(T v) { return st().send_blocking(v); }

    // The receiver closed the channel or is gone: sends fail.
    [[nodiscard]] bool is_closed() const { return st().closed_for_senders(); }
    [[nodiscard]] std::size_t capacity() const { return st().capacity(); }

private:
    template <class U>
    friend std::pair<channel_sender<U>, channel_receiver<U>> channel(std::size_t capacity);
    explicit channel_sender(std::shared_ptr<detail::channel_state<T>> st) noexcept
        : m_st(std::move(st)) {}
    detail::channel_state<T>& st() const {
        if (!m_st) {
            throw std::logic_error("coio::channel_sender: empty sender");
        }
        return *m_st;
    }

    std::shared_ptr<detail::channel_state<T>> m_st;
};

template <class T>
class channel_receiver {
public:
    channel_receiver(channel_receiver&&) noexcept = default;
    channel_receiver& operator=(channel_receiver&& o) noexcept {
        if (this != &o) {
            drop();
            m_st = std::move(o.m_st);
        }
        return *this;
    }
    channel_receiver(const channel_receiver&) = delete;
    channel_receiver& operator=(const channel_receiver&) = delete;
    ~channel_receiver() { drop(); }

    class recv_awaiter {
    public:
        explicit recv_awaiter(detail::channel_state<T>& st) noexcept : m_st(&st) {}
        recv_awaiter(recv_awaiter&&) noexcept = default;
        recv_awaiter& operator=(const recv_awaiter&) = delete;

        static bool await_ready() noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            if (!m_wait.prepare(h)) {
                return false; // a pending cancel: await_resume throws
            }
            if (m_st->recv_or_park(m_wait, m_out)) {
                m_immediate = true;
                return false;
            }
            m_wait.listen();
            return true;
        }
        // The next value, or nullopt at the end. Throws cancelled_error if
        // cancelled (then no value was taken).
        std::optional<T> await_resume() {
            if (m_immediate) {
                return std::move(m_out);
            }
            if (m_wait.revoked() && m_wait.m_item) {
                // Handed a value, but cancelled before running: give it back.
                m_wait.finish();
                m_st->give_back(std::move(*m_wait.m_item));
                m_wait.throw_cancelled();
            }
            m_wait.finish();
            return std::move(m_wait.m_item);
        }

    private:
        detail::channel_state<T>* m_st;
        std::optional<T> m_out;
        detail::recv_waiter<T> m_wait;
        bool m_immediate = false;
    };

    // The next value, waiting while none is buffered; nullopt once every
    // sender is gone or the channel is closed, and nothing is buffered.
    [[nodiscard]] recv_awaiter recv() { return recv_awaiter(st()); }
    // A buffered value, or nullopt (then is_closed() tells whether one can
    // still come).
    std::optional<T> try_recv() { return st().try_recv(); }
    // From a plain thread: block while nothing is buffered.
    std::optional<T> recv_blocking() { return st().recv_blocking(); }

    // Refuse further sends; what is buffered can still be received.
    void close() { st().close(false); }
    // Nothing more can arrive: closed (or every sender gone) and empty.
    [[nodiscard]] bool is_closed() const { return st().closed_for_receiver(); }
    // Values buffered now.
    [[nodiscard]] std::size_t size() const { return st().size(); }
    [[nodiscard]] std::size_t capacity() const { return st().capacity(); }

private:
    template <class U>
    friend std::pair<channel_sender<U>, channel_receiver<U>> channel(std::size_t capacity);
    explicit channel_receiver(std::shared_ptr<detail::channel_state<T>> st) noexcept
        : m_st(std::move(st)) {}
    detail::channel_state<T>& st() const {
        if (!m_st) {
            throw std::logic_error("coio::channel_receiver: empty (moved-from) receiver");
        }
        return *m_st;
    }
    void drop() noexcept {
        if (m_st) {
            m_st->close(true);
            m_st.reset();
        }
    }

    std::shared_ptr<detail::channel_state<T>> m_st;
};

// A channel holding up to `capacity` values (>= 1; std::invalid_argument
// otherwise): one sender (copy it for more producers) and the receiver.
template <class T>
std::pair<channel_sender<T>, channel_receiver<T>> channel(std::size_t capacity) {
    auto st = std::make_shared<detail::channel_state<T>>(capacity);
    return {channel_sender<T>(st), channel_receiver<T>(st)};
}

} // namespace coio
