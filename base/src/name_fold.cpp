#include "autosync/base/name_fold.hpp"

#include <utf8proc.h>

#include <cstdlib>

namespace autosync {

namespace {

std::string fold_ascii(std::string_view name) {
  std::string out(name);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::string fold_name(std::string_view name) {
  // Most names are ASCII, where folding is lower-casing: every look-up of a path folds
  // each of its names (and loading a snapshot every name), so they take one pass and skip
  // the library.
  std::string out(name);
  bool ascii = true;
  for (auto& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      ascii = false;
      break;
    }
    if (u >= 'A' && u <= 'Z') c = static_cast<char>(u - 'A' + 'a');
  }
  if (ascii) return out;
  utf8proc_uint8_t* folded = nullptr;
  const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(name.data()),
                                   static_cast<utf8proc_ssize_t>(name.size()), &folded,
                                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE |
                                                                  UTF8PROC_COMPOSE |
                                                                  UTF8PROC_CASEFOLD));
  if (length < 0) return fold_ascii(name);
  out.assign(reinterpret_cast<const char*>(folded), static_cast<std::size_t>(length));
  std::free(folded);
  return out;
}

}  // namespace autosync
