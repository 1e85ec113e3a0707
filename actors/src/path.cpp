#include "autosync/actors/path.hpp"

#include "autosync/base/name_fold.hpp"

#include <algorithm>
#include <cstdint>

namespace autosync::actors {

namespace {

error bad_path(std::string_view path, const std::string& why) {
  std::size_t cut = std::min<std::size_t>(path.size(), 200);
  // Whole characters only: the message goes to people, and half a character is not text.
  while (cut > 0 && cut < path.size() && (static_cast<unsigned char>(path[cut]) & 0xc0) == 0x80) --cut;
  std::string shown(path.substr(0, cut));
  for (auto& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return error(error_kind::invalid, "bad path \"" + shown + "\": " + why);
}

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid UTF-8 (overlong
// forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b & 0x3f);
  }
  static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < smallest[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  if (cp >= 0x80 && cp < 0xa0) return 0;  // C1 control characters
  return len;
}

}  // namespace

bool is_clean_text(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return false;
    const std::size_t len = utf8_sequence(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

status validate_path(std::string_view path) {
  if (path.empty()) return bad_path(path, "it is empty");
  if (path.front() != '/') return bad_path(path, "it must start with \"/\"");
  if (path.size() == 1) return bad_path(path, "it names the root folder");
  if (path.size() > path_limits::path_bytes_max) {
    return bad_path(path, "it is longer than " + std::to_string(path_limits::path_bytes_max) +
                              " bytes");
  }
  if (path.back() == '/') return bad_path(path, "it ends with \"/\"");
  std::size_t start = 1;
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      const auto name = path.substr(start, i - start);
      if (name.empty()) return bad_path(path, "it has an empty name (\"//\")");
      if (name == "." || name == "..") return bad_path(path, "it has a \".\" or \"..\" name");
      if (name.size() > path_limits::name_bytes_max) {
        return bad_path(path, "a name is longer than " +
                                  std::to_string(path_limits::name_bytes_max) + " bytes");
      }
      start = i + 1;
      continue;
    }
    const auto c = static_cast<unsigned char>(path[i]);
    if (c < 0x20 || c == 0x7f) return bad_path(path, "it contains a control character");
    const auto len = utf8_sequence(path, i);
    if (len == 0) return bad_path(path, "it is not valid UTF-8");
    i += len - 1;
  }
  return status::ok();
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 1;
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      parts.push_back(path.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

std::string_view parent_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
}

std::string_view name_of(std::string_view path) { return path.substr(path.rfind('/') + 1); }

std::string fold_case(std::string_view name) { return fold_name(name); }

}  // namespace autosync::actors
