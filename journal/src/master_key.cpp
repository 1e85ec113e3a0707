#include "autosync/journal/master_key.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

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
  master_key key;
  if (RAND_bytes(key.bytes.data(), master_key::size) != 1)
    return error(error_kind::internal, "no randomness available for a master key");
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    return error(errno == EEXIST ? error_kind::conflict : error_kind::unavailable,
                 "cannot create master key file " + file.string() + ": " + std::strerror(errno));
  }
  std::string text =
      to_hex({reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size()}) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(file.c_str());
    return error(error_kind::unavailable, "cannot write master key file " + file.string());
  }
  return key;
}

}  // namespace autosync::journal
