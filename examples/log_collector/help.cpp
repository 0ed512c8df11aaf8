// log_collector/help.cpp - coio-logcollect --help (options.hpp).
#include "options.hpp"

#include <cstdio>

namespace logcollect {

namespace {

constexpr const char* help_text = R"(usage: coio-logcollect [options] HOST:PORT...
       coio-logcollect [options] --sources FILE
       coio-logcollect [options] --listen PORT
       coio-logcollect [options] --listen-tls PORT --tls-cert FILE --tls-key FILE
       coio-logcollect [options] --tls-ca FILE [--tls-cert FILE --tls-key FILE] HOST:PORT...

Collect newline-delimited log lines from TCP log sources into one output.
Each HOST:PORT is a source the collector connects to ("pull"): it reads the
stream in fixed-size chunks, reassembles lines, writes them out and answers
every line with "ACK\n". All sources run as tasks on one event loop (or on
N with --loops N). With
--listen it also accepts syslog senders ("push", RFC 6587 framing, no ACKs),
with --listen-tls syslog over TLS (RFC 5425).

Sources:
  HOST:PORT              a source: numeric IPv4 address, or [IPv6]:PORT
  --sources FILE         more sources, one HOST:PORT per line; blank lines and
                         '#' comments are ignored
  --listen PORT          accept syslog over TCP on 127.0.0.1:PORT (or
                         HOST:PORT); 0 picks a free port. Each frame is read
                         with octet counting ("LEN SP MSG") if it starts with
                         digits and a space, else up to LF (RFC 6587 3.4)
  --listen-tls PORT      accept syslog over TLS (RFC 5425: octet counting;
                         LF framing is read too) on 127.0.0.1:PORT (or
                         HOST:PORT), alongside --listen or alone; the source
                         column is "push tls HOST:PORT". A failed handshake
                         closes that connection only and is reported
  tls://HOST:PORT        a source reached over TLS (needs --tls-ca); the
                         others stay plain TCP
  --tls-ca FILE          the CAs for tls:// sources; with no tls:// source,
                         connect to every HOST:PORT source over TLS. A TLS
                         source's certificate must verify against the CAs
                         in FILE (PEM) and name the source's IP address (an
                         IP subjectAltName). A failed handshake is retried
                         with backoff, as a refused connect is
  --tls-cert FILE        the certificate chain (PEM, leaf first) of the
                         --listen-tls server, and with --tls-ca the client
                         certificate sent to the sources
  --tls-key FILE         its private key (PEM)
  --max-connections N    push connections open at once, per listener (default
                         1024); at the cap accepting pauses until one ends
                         (further senders wait in the listen backlog; said
                         once). With --loops N each loop takes an N-th of it
                         (rounded up)
  --push-memory BYTES    bytes of unfinished push messages held at once, all
                         connections together (default 64m; k, m, g suffixes):
                         each connection holds at most min(--max-line,
                         BYTES / --max-connections / listeners), longer
                         messages are written in pieces of that size; a
                         total for all loops
  --max-frame N          longest octet-counted frame (default 65536); a longer
                         count is a framing error: the frame is read up to LF
                         instead, as rsyslog does

Output:
  -o, --output FILE|-    append records to FILE (created if missing); '-' is
                         stdout (default). SIGHUP reopens FILE (log rotation);
                         a removed FILE is created again
  --format plain|json    plain (default): SOURCE<TAB>LINE
                         json: {"seq":N,"time":"...","source":"...","line":"..."}
                         Bytes that are not valid UTF-8 become U+FFFD in both.
  --sync                 fdatasync the output file before acknowledging

Reading:
  --chunk-size N         bytes per read (default 1024)
  --max-line N           longest line written as one record (default 65536)
  --backoff-min MS       first reconnect delay (default 100)
  --backoff-max MS       longest reconnect delay (default 10000); the delay
                         doubles per failed attempt, with jitter

Timeouts (seconds, fractions allowed; 0 turns one off):
  --connect-timeout S    a connect to a source that takes longer fails and is
                         retried with backoff (default 10)
  --keepalive S          TCP keepalive on source connections: probe after S
                         idle seconds; a source that vanished is noticed in
                         about 2 x S and reconnected (default 30)
  --ack-timeout S        a source that does not take our ACKs for S seconds
                         (they back up beyond 64 KiB, or its TCP acknowledges
                         nothing we send) is disconnected and reconnected
                         (default 30)
  --idle-timeout S       close a push connection that sent nothing for S
                         seconds (default 300)
  --message-timeout S    close a push connection whose message stays
                         unfinished for S seconds - a sender trickling bytes
                         (default 30); it bounds a TLS handshake too

Loops:
  --loops N              run on N event loops, one thread each (default 1;
                         0 = one per available core; at most 256). Source i
                         runs on loop i % N; --listen and --listen-tls accept
                         on every loop (SO_REUSEPORT, one port). Loop 0 owns
                         the output: the other loops hand it their records
                         and a line is acknowledged only after loop 0 wrote
                         it. Stats and the summary are summed over the loops
                         (the summary ends with one line per loop)

Progress (stderr):
  --stats-interval S     when stderr is not a terminal, print a stats line every
                         S seconds (default 10; 0 = never)
  --status, --no-status  force the live status line on or off (default: on
                         when stderr is a terminal)

  --list-backends        print the I/O backends usable here (COIO_BACKEND picks one)
  -h, --help             this text
  --version              version

Delivery: a line is acknowledged only after it has been written to the output
(write(2) completed; with --sync, also fdatasync'ed), so an acknowledged line
is never lost; a line written but not acknowledged when a connection breaks is
sent again by the source, so it may appear twice (at-least-once). A source that
refuses, resets or closes is reconnected with backoff; the others go on. On
SIGINT or SIGTERM the collector stops reading, writes and acknowledges what it
has, closes the connections, prints a summary and exits 0 (a second signal:
exit 1 at once).

Over-long lines: a line longer than --max-line bytes is written as pieces of
--max-line bytes (never cutting a UTF-8 character), in order, so memory stays
bounded and nothing is dropped. plain: every piece but the last has "SOURCE+"
in the first column; json: "part":K,"more":true|false. The line is
acknowledged ONCE, after its last piece is written. If the connection breaks
in the middle of such a line, an "aborted" record follows its pieces (plain:
"SOURCE!", json: "aborted":true) and the source sends the whole line again.
An unfinished line at a disconnect is never written as complete.

Output integrity: FILE holds whole records. A write that fails half way (a
full disk) is truncated back to the last whole record and stops the collector
(exit 1) without acknowledging it; a FILE that ends inside a record when it is
opened gets a newline and a "coio-logcollect!" torn-record marker first.

Exit status: 0 stopped by a signal, 1 runtime failure (output, listen
address, backend), 2 usage error.
)";

} // namespace

void print_help(std::FILE* out) {
    std::fputs(help_text, out);
}

} // namespace logcollect
