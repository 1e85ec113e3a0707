#include "autosync/journal/master_key.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "autosync/base/secret_file.hpp"
#include "autosync/base/sha256.hpp"

namespace autosync::journal {

namespace fs = std::filesystem;

result<master_key> load_master_key(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return error(error_kind::not_found, "master key file " + file.string() + ": " +
                                            std::strerror(errno) +
                                            "; pass the right --master-key-file");
  }
  if ((st.st_mode & 077) != 0) {
    return error(error_kind::invalid, "master key file " + file.string() +
                                          " is readable by other users; run chmod 600 on it");
  }
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  master_key key;
  if (text.size() == master_key::size) {
    std::memcpy(key.bytes.data(), text.data(), master_key::size);
    return key;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (auto digest = sha256_digest::from_hex(text)) {
    key.bytes = digest->bytes;  // same size: 32 bytes written as 64 hex digits
    return key;
  }
  return error(error_kind::invalid, "master key file " + file.string() +
                                        " must hold 64 hex digits (a 256-bit key)");
}

result<master_key> create_master_key_file(const fs::path& file) {
  auto hex = create_secret_file(file);
  if (!hex) {
    return error(hex.err().kind(), "master key: " + hex.err().message());
  }
  master_key key;
  key.bytes = sha256_digest::from_hex(*hex)->bytes;  // 64 hex digits: 32 bytes
  return key;
}

}  // namespace autosync::journal
