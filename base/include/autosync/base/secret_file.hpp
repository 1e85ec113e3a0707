// New secrets on disk: the master key, the development token secret.
#pragma once

#include <filesystem>
#include <string>

#include "autosync/base/error.hpp"

namespace autosync {

// Writes 32 fresh random bytes as 64 hex digits and a newline to a new `file` (mode 0600,
// fsynced) and returns the hex. Refuses (conflict) to overwrite an existing file: a lost
// secret loses what it protects.
result<std::string> create_secret_file(const std::filesystem::path& file);

}  // namespace autosync
