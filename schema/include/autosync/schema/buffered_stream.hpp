// A read buffer under an RPC connection. Cap'n Proto 0.9 reads each message as its first
// word, then its segment table and body, each a read() of its own, and then finds the
// socket empty with a third: three system calls a message. Reading whatever has arrived,
// up to 64 KiB at a time, serves a small message from one read() (and several pipelined
// ones from one). Writes pass straight through.
#pragma once

#include <kj/async-io.h>

namespace autosync::schema {

kj::Own<kj::AsyncIoStream> buffered(kj::Own<kj::AsyncIoStream> stream);

}  // namespace autosync::schema
