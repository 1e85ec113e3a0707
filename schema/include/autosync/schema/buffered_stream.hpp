// A read buffer under an RPC connection. Cap'n Proto 0.9 reads each message as its first
// word, then its segment table and body, each a read() of its own, and then finds the
// socket empty with a third: three system calls a message. Reading whatever has arrived,
// up to 64 KiB at a time, serves a small message from one read() (and several pipelined
// ones from one).
//
// With `gather_writes`, small writes (up to 16 KiB) are gathered too, and leave in one
// write() when the event loop has nothing else to run: a call costs its caller two
// messages (the call, then the Finish once the answer is in), which went out as two system
// calls and arrived as two reads. A large write is never copied; it leaves with what is
// gathered, in one writev(). At most 64 KiB is gathered while a write is in progress;
// beyond it writes wait for the socket. Gathered bytes wait for the loop to go idle, so a
// program whose loop runs only while it waits in a call (the SDK) must let it run to idle
// (poll()) before it goes about other work. Clients gather; the server, whose answers
// go to different connections and whose aborts must leave before it drops a connection,
// writes straight through.
#pragma once

#include <kj/async-io.h>

namespace autosync::schema {

kj::Own<kj::AsyncIoStream> buffered(kj::Own<kj::AsyncIoStream> stream, bool gather_writes);

}  // namespace autosync::schema
