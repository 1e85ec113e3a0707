#include "autosync/base/secret_file.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "autosync/base/sha256.hpp"

namespace autosync {

result<std::string> create_secret_file(const std::filesystem::path& file) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return error(error_kind::internal, "no randomness available for a secret");
  }
  const std::string hex = to_hex({reinterpret_cast<const char*>(raw), sizeof(raw)});
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return error(errno == EEXIST ? error_kind::conflict : error_kind::unavailable,
                 "cannot create " + file.string() + ": " + std::strerror(errno));
  }
  const std::string text = hex + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(file.c_str());
    return error(error_kind::unavailable, "cannot write " + file.string());
  }
  return hex;
}

}  // namespace autosync
