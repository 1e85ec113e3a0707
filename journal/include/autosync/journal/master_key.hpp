// The master key: the one secret from which every user's data key is derived.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>

#include "autosync/base/error.hpp"

namespace autosync::journal {

struct master_key {
  static constexpr std::size_t size = 32;  // AES-256
  std::array<std::uint8_t, size> bytes{};
};

// Reads a key file: 64 hex digits (a trailing newline is allowed) or exactly 32 raw bytes.
// Refuses anything else, and a file other users may read, with a message saying how to fix it.
result<master_key> load_master_key(const std::filesystem::path& file);

// Writes a fresh random key as hex to `file` with mode 0600. Refuses to overwrite: losing
// a master key loses every byte sealed under it.
result<master_key> create_master_key_file(const std::filesystem::path& file);

}  // namespace autosync::journal
