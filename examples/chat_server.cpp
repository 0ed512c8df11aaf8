// chat_server - a line-based chat room: every line a client sends goes to
// every other client.
//
// What it shows: start_server with a (reader, writer) handler; a bounded
// coio::queue per client, so that one slow reader costs the others nothing
// (its messages queue up to 64, then it is dropped from the room); two tasks
// per client (reading lines, delivering the queue) joined by gather; a
// broadcast; an idle timeout from server_options; and a graceful Ctrl-C
// (SIGINT/SIGTERM): stop accepting, tell everyone, wait (at most 2 s) until
// that message is handed to every connection, then server.close_clients()
// flushes and closes them all and cancels their handlers - no list of
// sockets kept by hand.
//
// Run:  ./build/examples/chat_server [--port 0]
// Try:  nc 127.0.0.1 PORT in two terminals: give a name, then type lines.
#include <coio/coio.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct member {
    explicit member(std::string n) : name(std::move(n)), outbox(64) {}
    std::string name;
    coio::queue<std::string> outbox; // lines waiting to be written to this client
};

class room {
public:
    void join(member* m) {
        broadcast(nullptr, "* " + m->name + " joined\n");
        m_members.push_back(m);
    }
    void leave(member* m) {
        m_undelivered -= std::min(m_undelivered, m->outbox.qsize());
        std::erase(m_members, m);
        broadcast(nullptr, "* " + m->name + " left\n");
        notify_if_delivered();
    }
    // To everyone but `from`. A member whose outbox is full reads too slowly:
    // its outbox is shut down, which ends its session.
    void broadcast(const member* from, const std::string& line) {
        for (member* m : m_members) {
            if (m == from || m->outbox.is_shutdown()) {
                continue;
            }
            try {
                m->outbox.put_nowait(line);
                ++m_undelivered;
                m_delivered.clear();
            } catch (const coio::queue_full&) {
                drop(m);
            }
        }
    }
    // Ends a member's session: what is queued for it is thrown away.
    void drop(member* m) {
        m_undelivered -= std::min(m_undelivered, m->outbox.qsize());
        m->outbox.shutdown(true);
        notify_if_delivered();
    }
    // A line left an outbox for its connection's writer.
    void delivered_one() {
        --m_undelivered;
        notify_if_delivered();
    }
    // Until every queued line has been handed to its connection.
    coio::task<> all_delivered() {
        while (m_undelivered > 0) {
            co_await m_delivered.wait();
        }
    }

private:
    void notify_if_delivered() {
        if (m_undelivered == 0) {
            m_delivered.set();
        }
    }

    std::vector<member*> m_members;
    std::size_t m_undelivered = 0;
    coio::event m_delivered;
};

// Writes what is queued for this member until its outbox is shut down, then
// closes the connection (which also ends a read in progress: a member that
// read too slowly leaves the room).
coio::task<> deliver(room* r, member* me, coio::stream_writer writer) {
    try {
        for (;;) {
            std::string line = co_await me->outbox.get();
            writer.write(line); // never suspends: it is buffered if need be
            r->delivered_one();
            co_await writer.drain();
        }
    } catch (const coio::queue_shutdown&) {
        // the session is over
    } catch (const coio::net_error&) {
        r->drop(me); // the connection failed
    }
    writer.close(); // after what is buffered is sent
}

// Broadcasts each line this member sends, until EOF or an error.
coio::task<> read_lines(room* r, member* me, coio::stream_reader reader) {
    try {
        while (!me->outbox.is_shutdown()) {
            std::string line = co_await reader.readline();
            if (line.empty()) {
                break; // the client left
            }
            r->broadcast(me, me->name + ": " + line);
        }
    } catch (const coio::net_error&) {
        // reset, or the idle timeout: the client is gone
    } catch (const coio::limit_overrun_error&) {
        // a line over 64 KiB: drop this client
    }
    me->outbox.shutdown(); // deliver() writes what is queued, then ends
}

coio::task<> chat_session(room* r, coio::stream_reader reader, coio::stream_writer writer) {
    writer.write("welcome! your name?\n");
    std::string name = co_await reader.readline();
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) {
        name.pop_back();
    }
    if (name.empty()) {
        co_return;
    }
    member me(name);
    r->join(&me);
    // Both run until the client leaves; close_clients() cancels both.
    try {
        co_await coio::gather(read_lines(r, &me, reader), deliver(r, &me, writer));
    } catch (const coio::cancelled_error&) {
        r->leave(&me);
        throw;
    }
    r->leave(&me);
}

struct chat_handler {
    room* r;
    coio::task<> operator()(coio::stream_reader reader, coio::stream_writer writer) const {
        return chat_session(r, std::move(reader), std::move(writer));
    }
};

coio::task<int> serve(std::uint16_t port) {
    coio::signal_set stop{SIGINT, SIGTERM};
    room r;
    chat_handler handler{&r}; // named: g++ 12 and temporaries, docs/design.md
    coio::server_options opts;
    opts.stream.idle_timeout = 10min; // silent clients are dropped
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", port, opts);
    std::printf("listening on %s\n", srv.local_address().to_string().c_str());
    std::fflush(stdout);

    const int sig = co_await stop.wait();
    std::printf("got %s: closing %llu connection(s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
                static_cast<unsigned long long>(srv.stats().active));
    std::fflush(stdout);
    srv.close(); // no new clients
    r.broadcast(nullptr, "* server shutting down\n");
    try {
        co_await coio::wait_for(r.all_delivered(), 2s);
    } catch (const coio::timeout_error&) {
        std::printf("some clients read too slowly; closing anyway\n");
    }
    srv.close_clients(); // flush, close, cancel every session
    co_await coio::wait_for(srv.wait_closed(), 5s);
    std::printf("bye\n");
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    unsigned long port = 0;
    if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
        port = std::strtoul(argv[2], nullptr, 10);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
        return 2;
    }
    try {
        return coio::run(serve(static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chat_server: %s\n", e.what());
        return 1;
    }
}
