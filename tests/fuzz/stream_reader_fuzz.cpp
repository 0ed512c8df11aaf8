// tests/fuzz/stream_reader_fuzz.cpp - libFuzzer target for coio's buffered
// stream reader (readline, readuntil, readexactly, read) over a connected
// AF_UNIX socket pair on a coio loop (the backend from COIO_BACKEND).
//
// The input chooses the reader's limit, a list of read operations, the bytes
// the peer sends and the chunks it sends them in (with 0-2 loop iterations
// between chunks), then the peer half-closes. A model that sees the whole
// stream at once says what each operation must return (asyncio's rules, which
// stream.hpp follows): the results do not depend on how the bytes arrive.
// Where asyncio's own rules depend on the timing - readline after a line over
// the limit drops "what is buffered" - the model stops predicting bytes and
// only the bounds are checked from there on. Also checked: a readline
// cancelled while it waits consumes nothing or returns a whole result; the
// reader's buffer stays within limit + separator + one 4 KiB chunk; only the
// documented exceptions come out; the loop ends clean (no task, timer, I/O,
// registration or lent buffer left).
#include "fuzz_support.hpp"

#include <coio/coio.hpp>

#include <sys/socket.h>

#include <memory>
#include <optional>

namespace {

enum class op_kind : std::uint8_t { readline, readuntil, readexactly, read, readline_cancel };

struct read_op {
    op_kind kind;
    std::ptrdiff_t n = 0; // readexactly, read; readline_cancel: yields before the cancel
    std::string sep;      // readuntil
};

struct plan {
    std::size_t limit = 0;
    std::vector<read_op> ops;
    std::string data;
    std::vector<std::string_view> chunks;
    std::vector<int> pauses; // loop iterations after each chunk
};

// What the stream holds from the model's point of view.
struct model {
    std::string_view data;
    std::size_t pos = 0;
    bool known = true; // false after a readline overrun: pos is then a guess

    [[nodiscard]] std::string_view rest() const { return data.substr(pos); }
};

enum class outcome : std::uint8_t { value, overrun, incomplete };

// What readuntil(sep) does on the model's stream (asyncio's readuntil).
outcome expect_until(const model& m, std::string_view sep, std::size_t limit, std::string* out) {
    const std::string_view r = m.rest();
    const std::size_t isep = r.find(sep);
    if (isep != std::string_view::npos) {
        if (isep > limit) {
            return outcome::overrun;
        }
        *out = std::string(r.substr(0, isep + sep.size()));
        return outcome::value;
    }
    if (r.size() >= sep.size() && r.size() + 1 - sep.size() > limit) {
        return outcome::overrun;
    }
    *out = std::string(r);
    return outcome::incomplete;
}

coio::task<> send_chunks(coio::socket s, std::shared_ptr<const plan> p) {
    for (std::size_t i = 0; i < p->chunks.size(); ++i) {
        coio::io_result w = co_await s.write_all(p->chunks[i]);
        FUZZ_CHECK(w.ok());
        for (int k = 0; k < p->pauses[i]; ++k) {
            co_await coio::yield_now();
        }
    }
    FUZZ_CHECK(!s.shutdown(coio::shutdown_how::write));
    // Keep the socket open until the reader is done: the task ends when it
    // is cancelled or the loop tears it down.
    coio::event never;
    co_await never.wait();
}

// Runs one operation; checks its result against the model and moves it on.
coio::task<> run_op(coio::stream_reader* r, read_op op, model* m, std::size_t limit) {
    std::string want;
    switch (op.kind) {
    case op_kind::readexactly: {
        const auto n = static_cast<std::size_t>(op.n);
        try {
            std::string got = co_await r->readexactly(n);
            FUZZ_CHECK(got.size() == n);
            if (m->known) {
                FUZZ_CHECK(m->rest().substr(0, n) == got && m->rest().size() >= n);
            }
            m->pos += n;
        } catch (const coio::incomplete_read_error& e) {
            FUZZ_CHECK(e.expected() == n && e.partial().size() < n);
            if (m->known) {
                FUZZ_CHECK(e.partial() == m->rest());
            }
            m->pos = m->data.size();
        }
        break;
    }
    case op_kind::readuntil: {
        const outcome o = expect_until(*m, op.sep, limit, &want);
        try {
            std::string got = co_await r->readuntil(op.sep);
            FUZZ_CHECK(!m->known || (o == outcome::value && got == want));
            FUZZ_CHECK(got.ends_with(op.sep) && got.size() <= limit + op.sep.size());
            m->pos += got.size();
        } catch (const coio::limit_overrun_error&) {
            FUZZ_CHECK(!m->known || o == outcome::overrun); // nothing consumed
        } catch (const coio::incomplete_read_error& e) {
            FUZZ_CHECK(!m->known || (o == outcome::incomplete && e.partial() == want));
            m->pos = m->data.size();
        }
        break;
    }
    case op_kind::readline: {
        const outcome o = expect_until(*m, "\n", limit, &want);
        try {
            std::string got = co_await r->readline();
            FUZZ_CHECK(!m->known || (o != outcome::overrun && got == want));
            FUZZ_CHECK(got.size() <= limit + 1); // a line's '\n' starts at most at limit
            m->pos += got.size();
        } catch (const coio::limit_overrun_error&) {
            FUZZ_CHECK(!m->known || o == outcome::overrun);
            m->known = false; // what was dropped depends on what had arrived
        }
        break;
    }
    case op_kind::read: {
        std::string got = co_await r->read(op.n);
        if (op.n < 0) {
            FUZZ_CHECK(!m->known || got == m->rest());
            m->pos = m->data.size();
        } else {
            FUZZ_CHECK(got.size() <= static_cast<std::size_t>(op.n));
            if (m->known) {
                // Some bytes if there are any (and any were asked for).
                FUZZ_CHECK(got.empty() == (op.n == 0 || m->rest().empty()));
                FUZZ_CHECK(m->rest().substr(0, got.size()) == got);
            }
            m->pos += got.size();
        }
        break;
    }
    case op_kind::readline_cancel: {
        const outcome o = expect_until(*m, "\n", limit, &want);
        coio::task_handle<std::string> h = coio::create_task(r->readline());
        for (std::ptrdiff_t k = 0; k < op.n; ++k) {
            co_await coio::yield_now();
        }
        h.cancel();
        try {
            std::string got = co_await h;
            FUZZ_CHECK(!m->known || (o != outcome::overrun && got == want));
            m->pos += got.size();
        } catch (const coio::cancelled_error&) {
            // Nothing consumed: the next operation sees the same bytes.
        } catch (const coio::limit_overrun_error&) {
            FUZZ_CHECK(!m->known || o == outcome::overrun);
            m->known = false;
        }
        break;
    }
    }
    if (m->pos > m->data.size()) {
        FUZZ_CHECK(!m->known);
        m->pos = m->data.size();
    }
}

coio::task<> fuzz_one(std::shared_ptr<const plan> p) {
    int sv[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    coio::socket theirs(sv[0]);
    coio::stream_pair streams = coio::make_streams(coio::socket(sv[1]), {.limit = p->limit});
    coio::task_handle<> sender = coio::create_task(send_chunks(std::move(theirs), p));

    model m{p->data};
    const std::size_t max_sep = 4;
    std::size_t before = 0;
    for (const read_op& op : p->ops) {
        co_await run_op(&streams.reader, op, &m, p->limit);
        const std::size_t now = streams.reader.buffered();
        if (op.kind != op_kind::readexactly && op.kind != op_kind::read) {
            FUZZ_CHECK(now <= std::max(before, p->limit + max_sep + 4096));
        }
        before = now;
        if (streams.reader.at_eof()) {
            FUZZ_CHECK(!m.known || m.pos == m.data.size());
        }
    }
    sender.cancel(); // before the reader's side closes: the sender never sees EPIPE
    try {
        co_await sender;
    } catch (const coio::cancelled_error&) {
    }
    streams.writer.close();
}

std::shared_ptr<plan> make_plan(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    auto p = std::make_shared<plan>();
    p->limit = fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<std::size_t>(1, 40)
                                 : fdp.ConsumeIntegralInRange<std::size_t>(1, 9000);
    const std::size_t n_ops = fdp.ConsumeIntegralInRange<std::size_t>(1, 24);
    static const std::string_view seps[] = {"\n", "\r\n", "ab", std::string_view("\0", 1), "xyz!"};
    for (std::size_t i = 0; i < n_ops; ++i) {
        read_op op{static_cast<op_kind>(fdp.ConsumeIntegralInRange<int>(0, 4)), 0, {}};
        switch (op.kind) {
        case op_kind::readexactly:
            op.n = fdp.ConsumeIntegralInRange<std::ptrdiff_t>(0, 300);
            break;
        case op_kind::read:
            op.n = fdp.ConsumeIntegralInRange<std::ptrdiff_t>(-1, 300);
            break;
        case op_kind::readuntil: {
            op.sep = seps[fdp.ConsumeIntegralInRange<std::size_t>(0, std::size(seps) - 1)];
            break;
        }
        case op_kind::readline_cancel:
            op.n = fdp.ConsumeIntegralInRange<std::ptrdiff_t>(0, 3);
            break;
        case op_kind::readline:
            break;
        }
        p->ops.push_back(std::move(op));
    }
    p->data = fdp.ConsumeRandomLengthString(4096);
    p->chunks = fuzz::choose_chunks(p->data, fdp);
    for (std::size_t i = 0; i < p->chunks.size(); ++i) {
        p->pauses.push_back(static_cast<int>(p->chunks[i].size() % 3));
    }
    return p;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // One loop for the whole run (a new backend per input would cost more
    // than the input); it must be clean after every input.
    static coio::event_loop loop;
    loop.run_until_complete(fuzz_one(make_plan(data, size)));
    const coio::loop_stats s = loop.stats();
    FUZZ_CHECK(s.tasks == 0 && s.ready == 0 && s.timers == 0 && s.io_in_flight == 0);
    FUZZ_CHECK(s.registrations == 0 && s.buffers_out == 0);
    return 0;
}
