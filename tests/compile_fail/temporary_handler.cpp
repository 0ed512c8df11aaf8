// The shape of issue #11's use-after-free: a stateful handler built as a
// temporary in the same statement as co_await. g++ 12 destroys that
// temporary twice, so coio refuses it there at compile time
// (include/coio/detail/callable_arg.hpp); other compilers accept it.
#include <coio/coio.hpp>

#include <memory>

struct state {
    int hits = 0;
};
struct handler {
    std::shared_ptr<state> st;
    coio::task<> operator()(coio::socket s) {
        ++st->hits;
        (void)s;
        co_return;
    }
};

coio::task<> serve(std::shared_ptr<state> st) {
    coio::server srv = co_await coio::start_server(handler{st}, "127.0.0.1", 0);
    srv.close();
}

int main() {
    coio::run(serve(std::make_shared<state>()));
}
