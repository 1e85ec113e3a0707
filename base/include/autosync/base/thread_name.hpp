// Names the calling thread, so `top -H`, `ps -L`, perf and debuggers tell the journal's
// writer from the RPC loop from the recovery pool. Linux keeps at most 15 bytes; longer
// names are cut. Best effort: a failure changes nothing else.
#pragma once

#include <string_view>

namespace autosync {

void name_this_thread(std::string_view name);

}  // namespace autosync
