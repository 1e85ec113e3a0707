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
  // Canonical caseless matching: decompose (marks in canonical order), fold, compose.
  // Folding while decomposing would not do: it turns a combining mark into a letter
  // (U+0345 becomes iota) before the marks are put in order.
  auto map = [](std::string_view text, int options, std::string& into) {
    utf8proc_uint8_t* mapped = nullptr;
    const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                     static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                     static_cast<utf8proc_option_t>(options));
    if (length < 0) return false;
    into.assign(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length));
    std::free(mapped);
    return true;
  };
  std::string decomposed, folded;
  if (!map(name, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, decomposed) ||
      !map(decomposed, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_CASEFOLD, folded) ||
      !map(folded, UTF8PROC_STABLE | UTF8PROC_COMPOSE, out)) {
    return fold_ascii(name);
  }
  return out;
}

}  // namespace autosync
