// lib/tls/streams.cpp - open_connection and start_server over TLS: the plain
// connection, then stream_writer::start_tls. Built with or without OpenSSL
// (without it, start_tls throws tls_error unavailable).
#include "exception_text.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/connection.hpp>
#include <coio/net/server.hpp>

#include <stdexcept>

namespace coio {

namespace {

void check_client(const tls_context& ctx) {
    if (!ctx || ctx.is_server()) {
        throw std::invalid_argument("coio::open_connection: the tls_context must be a client "
                                    "context (tls_context::client)");
    }
}

} // namespace

task<stream_pair> open_connection(std::string host, std::uint16_t port, tls_context ctx,
                                  tls_options tls, stream_options opts) {
    check_client(ctx);
    if (tls.server_hostname.empty()) {
        tls.server_hostname = host;
    }
    socket s = co_await connect(std::move(host), port);
    stream_pair p = make_streams(std::move(s), opts);
    co_await p.writer.start_tls(std::move(ctx), std::move(tls));
    co_return p;
}

task<stream_pair> open_connection(std::string host, std::uint16_t port, tls_context ctx) {
    return open_connection(std::move(host), port, std::move(ctx), tls_options{});
}

task<stream_pair> open_connection(address to, tls_context ctx) {
    return open_connection(to, std::move(ctx), tls_options{});
}

task<stream_pair> open_connection(address to, tls_context ctx, tls_options tls,
                                  stream_options opts) {
    check_client(ctx);
    socket s = co_await connect(to);
    stream_pair p = make_streams(std::move(s), opts);
    co_await p.writer.start_tls(std::move(ctx), std::move(tls));
    co_return p;
}

namespace detail {

namespace {

struct tls_server_setup {
    stream_handler handler;
    tls_context ctx;
    tls_options tls;
    stream_options streams;
};

// One TLS connection: the handshake, then the handler. A failed handshake is
// this connection's business only: reported to the loop's exception handler
// (it names the peer and OpenSSL's reason), the connection closed, the
// handler never called. The streams are registered on the server's client
// list before the handshake, so close_clients() / abort_clients() reach a
// connection still in its handshake as well.
task<> tls_serve(std::shared_ptr<const tls_server_setup> setup, stream_reader r, stream_writer w) {
    std::exception_ptr failure;
    try {
        co_await w.start_tls(setup->ctx, setup->tls);
    } catch (const cancelled_error&) {
        throw;
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        const std::string msg = describe_exception(failure) + "; connection closed";
        event_loop::running().call_exception_handler({msg, "TLS handshake", failure});
        co_return;
    }
    co_await setup->handler(std::move(r), std::move(w));
}

} // namespace

connection_fn make_tls_connection_fn(stream_handler handler, tls_context ctx, tls_options tls,
                                     stream_options so) {
    if (!ctx || !ctx.is_server()) {
        throw std::invalid_argument(
            "coio::start_server: the tls_context must be a server context (tls_context::server)");
    }
    auto setup = std::make_shared<const tls_server_setup>(
        tls_server_setup{std::move(handler), std::move(ctx), std::move(tls), so});
    return [setup](socket s, connection_node& node) {
        stream_pair p = make_server_streams(std::move(s), setup->streams, node);
        return tls_serve(setup, std::move(p.reader), std::move(p.writer));
    };
}

} // namespace detail
} // namespace coio
