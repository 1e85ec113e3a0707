// Paths as people name things: absolute, "/"-separated UTF-8 ("/docs/report.pdf").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "autosync/base/error.hpp"

namespace autosync::actors {

struct path_limits {
  // What Linux, macOS and Windows file systems all accept for one name.
  static constexpr std::size_t name_bytes_max = 255;
  // Windows' long-path limit; anything longer cannot be synced to every device.
  static constexpr std::size_t path_bytes_max = 4096;
};

// Checks an absolute path naming a file or folder (not the root). Rejected, with a message
// saying which part is wrong: empty, relative, trailing or doubled "/", "." or ".."
// components, NUL or other control characters, invalid UTF-8, a name or path too long.
status validate_path(std::string_view path);

// Whether `text` is valid UTF-8 without control characters: what a name shown to people
// (a path's component, a device id) must be.
bool is_clean_text(std::string_view text);

// The components of a valid path: "/a/b" -> {"a", "b"}. REQUIRES: validate_path(path).
std::vector<std::string_view> split_path(std::string_view path);

// "/a/b/c" -> "/a/b"; "/a" -> "/". REQUIRES: validate_path(path).
std::string_view parent_of(std::string_view path);

// The last component. REQUIRES: validate_path(path).
std::string_view name_of(std::string_view path);

// The key under which names in one folder collide (base/name_fold.hpp: letter case and
// Unicode normalization): two such names cannot live side by side, as macOS and Windows
// devices could not hold both.
std::string fold_case(std::string_view name);

}  // namespace autosync::actors
