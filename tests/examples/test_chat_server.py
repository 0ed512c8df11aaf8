"""examples/chat_server: three clients join, each line reaches the others
(not its sender) in order, a client leaving is announced, and SIGINT gives
every client the shutdown notice, then EOF, and the server exits 0."""
import argparse
import asyncio
import signal

from exsupport import Example, check, run


class Client:
    def __init__(self, name):
        self.name = name

    async def join(self, port):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        check(await self.line() == "welcome! your name?\n", f"{self.name}: no prompt")
        self.w.write(f"{self.name}\n".encode())
        await self.w.drain()

    async def line(self):
        return (await asyncio.wait_for(self.r.readline(), 5)).decode()

    async def say(self, text):
        self.w.write(f"{text}\n".encode())
        await self.w.drain()


async def body(workdir):
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat-server", required=True)
    args = ap.parse_args()
    server = Example([args.chat_server, "--port", "0"], workdir, "chat_server")
    try:
        port = await server.port()
        alice, bob, carol = Client("alice"), Client("bob"), Client("carol")
        await alice.join(port)
        await bob.join(port)
        check(await alice.line() == "* bob joined\n", "alice missed bob joining")
        await carol.join(port)
        for c in (alice, bob):
            check(await c.line() == "* carol joined\n", f"{c.name} missed carol joining")

        for i in range(20):
            await alice.say(f"a{i}")
            await bob.say(f"b{i}")
        got = {c.name: [await c.line() for _ in range(n)]
               for c, n in ((alice, 20), (bob, 20), (carol, 40))}
        check(got["alice"] == [f"bob: b{i}\n" for i in range(20)], f"alice: {got['alice'][:3]}")
        check(got["bob"] == [f"alice: a{i}\n" for i in range(20)], f"bob: {got['bob'][:3]}")
        from_a = [x for x in got["carol"] if x.startswith("alice: ")]
        from_b = [x for x in got["carol"] if x.startswith("bob: ")]
        check(from_a == [f"alice: a{i}\n" for i in range(20)], "carol: alice's lines out of order")
        check(from_b == [f"bob: b{i}\n" for i in range(20)], "carol: bob's lines out of order")

        carol.w.close()
        for c in (alice, bob):
            check(await c.line() == "* carol left\n", f"{c.name} missed carol leaving")

        rc = await server.stop(signal.SIGINT)
        check(rc == 0, f"exit status {rc}:\n{server.err()}")
        for c in (alice, bob):
            check(await c.line() == "* server shutting down\n", f"{c.name}: no shutdown notice")
            check(await c.line() == "", f"{c.name}: no EOF after the notice")
        out = server.out()
        check("got SIGINT: closing 2 connection(s)" in out and "bye" in out, out)
        check(server.err() == "", f"stderr:\n{server.err()}")
        print("3 clients, 80 lines broadcast, clean SIGINT shutdown")
    finally:
        server.kill()


if __name__ == "__main__":
    run(body, 60)
