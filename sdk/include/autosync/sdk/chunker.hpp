// Content-defined chunking (FastCDC, with normalized chunking): cut points depend on the
// bytes around them, not on offsets, so an insertion or an edit moves only the chunks it
// touches and a re-upload sends only those.
//
// Chunk sizes suit the file: small files get small chunks (dedup, fine-grained resume),
// large files larger ones (fewer chunk references per commit), and never so large that a
// small edit re-sends much: for a 256 MiB file the average is 64 KiB, so a 1 MiB edit
// re-sends about 1.1 MiB (Syncthing's fixed 128 KiB blocks send about 1.1 MB).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace autosync::sdk {

struct chunk_sizes {
  std::uint32_t min = 0;  // no cut before this many bytes
  std::uint32_t avg = 0;  // the size the cut condition aims at (a power of two)
  std::uint32_t max = 0;  // always a cut here

  // The sizes for a file of `file_bytes`.
  static chunk_sizes for_file(std::uint64_t file_bytes);
};

// Streams bytes in any pieces and reports chunk lengths as cut points are found: a large
// file never needs to be in memory whole. The lengths depend only on the bytes, not on how
// they were split into pieces.
class chunker {
public:
  explicit chunker(chunk_sizes sizes);

  // Consumes `data`; appends the length of every chunk completed inside it.
  void feed(std::string_view data, std::vector<std::uint32_t>& lengths);
  // Ends the stream; appends the last chunk's length if it has bytes.
  void finish(std::vector<std::uint32_t>& lengths);

private:
  chunk_sizes sizes_;
  std::uint64_t mask_small_;  // before avg: harder to cut (more bits must be zero)
  std::uint64_t mask_large_;  // after avg: easier to cut
  std::uint64_t fingerprint_ = 0;
  std::uint32_t length_ = 0;  // bytes in the current chunk
};

// All chunk lengths of `data` (one-shot convenience for data already in memory).
std::vector<std::uint32_t> chunk_lengths(std::string_view data, chunk_sizes sizes);

}  // namespace autosync::sdk
