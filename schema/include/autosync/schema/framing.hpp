// Cap'n Proto's standard stream framing, written without flattening the message first:
// the segment table, then the segments as they are. Snapshots are encoded with it and
// sealed values are framed with it.
#pragma once

#include <capnp/message.h>

#include <cstdint>
#include <string>

namespace autosync::schema {

// The segment table: count - 1, then each segment's size in words, as 32-bit
// little-endian numbers, padded to a whole word.
inline std::string segment_table(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  std::string table;
  auto put = [&table](std::size_t v) {
    for (int i = 0; i < 4; ++i) table.push_back(static_cast<char>(v >> (8 * i)));
  };
  put(segments.size() - 1);
  for (auto segment : segments) put(segment.size());
  if (segments.size() % 2 == 0) put(0);
  return table;
}

}  // namespace autosync::schema
