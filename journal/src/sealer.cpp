#include "sealer.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace autosync::journal {

namespace {

constexpr std::uint8_t seal_version = 1;
constexpr std::size_t nonce_bytes = 12;
constexpr std::size_t tag_bytes = 16;
constexpr std::string_view key_info_prefix = "autosync user key v1";

// OpenSSL 3 looks a cipher up by name on every implicit use, and a context initialised
// from scratch costs more than sealing a small event. So: the cipher is fetched once, and
// each thread keeps one context per direction, initialised with it once; a seal then
// only sets key and nonce.
const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

struct cipher_contexts {
  EVP_CIPHER_CTX* seal = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* open = EVP_CIPHER_CTX_new();
  // The key each context was last given: a user's events are read and written in runs,
  // and setting the same key again (AES key expansion, GCM's hash key) is wasted work.
  data_key seal_key{};
  data_key open_key{};
  bool seal_keyed = false;
  bool open_keyed = false;
  bool ready = EVP_EncryptInit_ex(seal, aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
               EVP_DecryptInit_ex(open, aes_256_gcm(), nullptr, nullptr, nullptr) == 1;
  ~cipher_contexts() {
    EVP_CIPHER_CTX_free(seal);
    EVP_CIPHER_CTX_free(open);
  }
};

cipher_contexts& thread_ciphers();

// Nonces come from the OS generator in blocks: one RAND_bytes call per 1024 nonces instead
// of one per value (each call takes locks and checks for fork).
class nonce_pool {
public:
  void take(unsigned char* out, std::size_t n);

private:
  unsigned char buffer_[12 * 1024];
  std::size_t used_ = sizeof buffer_;
};

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

[[noreturn]] void crypto_failure(const char* what) {
  // Only reachable when OpenSSL itself is broken (allocation failure, missing provider):
  // continuing could write data nobody can read back, so stop loudly.
  std::fprintf(stderr, "autosync: OpenSSL failed: %s\n", what);
  std::abort();
}

cipher_contexts& thread_ciphers() {
  thread_local cipher_contexts contexts;
  return contexts;
}

void nonce_pool::take(unsigned char* out, std::size_t n) {
  if (used_ + n > sizeof buffer_) {
    if (RAND_bytes(buffer_, sizeof buffer_) != 1) crypto_failure("RAND_bytes");
    used_ = 0;
  }
  std::memcpy(out, buffer_ + used_, n);
  used_ += n;
}

}  // namespace

data_key derive_user_key(const master_key& master, std::string_view salt, std::string_view user) {
  std::string info(key_info_prefix);
  info.append(user.data(), user.size());
  data_key out;
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) crypto_failure("HKDF unavailable");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<std::uint8_t*>(master.bytes.data()),
                                        master.bytes.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  int ok = EVP_KDF_derive(ctx, out.bytes.data(), out.bytes.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (ok != 1) crypto_failure("HKDF derive");
  return out;
}

namespace {

using cipher_update = int (*)(EVP_CIPHER_CTX*, unsigned char*, int*, const unsigned char*, int);

// The associated data (the family tag, then the key) in one update where it fits a small
// buffer: GCM hashes associated data as one stream, so this is the same as two updates,
// and OpenSSL 3's per-call overhead was a measurable part of reading an event.
bool add_associated_data(EVP_CIPHER_CTX* ctx, binding bound, cipher_update update) {
  int len = 0;
  unsigned char joined[320];
  if (bound.key.size() < sizeof joined) {
    joined[0] = static_cast<unsigned char>(bound.family_tag);
    std::memcpy(joined + 1, bound.key.data(), bound.key.size());
    return update(ctx, nullptr, &len, joined, static_cast<int>(bound.key.size() + 1)) == 1;
  }
  const auto family = static_cast<unsigned char>(bound.family_tag);
  return update(ctx, nullptr, &len, &family, 1) == 1 &&
         update(ctx, nullptr, &len, bytes_of(bound.key), static_cast<int>(bound.key.size())) == 1;
}

}  // namespace

void seal(const data_key& key, binding bound, const std::string_view* pieces, std::size_t count,
          std::string& out) {
  std::size_t plain_size = 0;
  for (std::size_t i = 0; i < count; ++i) plain_size += pieces[i].size();
  const std::size_t start = out.size();
  out.resize(start + sealed_overhead + plain_size);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + start);
  p[0] = seal_version;
  unsigned char* nonce = p + 1;
  unsigned char* cipher = nonce + nonce_bytes;
  unsigned char* tag = cipher + plain_size;
  // Random nonces: a sequence number could repeat under the same key after a failed
  // write is retried with other content, and a repeated GCM nonce leaks the key stream.
  thread_local nonce_pool nonces;
  nonces.take(nonce, nonce_bytes);

  auto& ciphers = thread_ciphers();
  EVP_CIPHER_CTX* ctx = ciphers.seal;
  int len = 0;
  const bool same_key = ciphers.seal_keyed && ciphers.seal_key.bytes == key.bytes;
  if (!ciphers.ready ||
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, same_key ? nullptr : key.bytes.data(), nonce) != 1 ||
      !add_associated_data(ctx, bound, EVP_EncryptUpdate)) {
    crypto_failure("AES-GCM seal");
  }
  unsigned char* at = cipher;
  for (std::size_t i = 0; i < count; ++i) {
    if (EVP_EncryptUpdate(ctx, at, &len, bytes_of(pieces[i]), static_cast<int>(pieces[i].size())) != 1)
      crypto_failure("AES-GCM seal");
    at += len;
  }
  if (EVP_EncryptFinal_ex(ctx, at, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, tag_bytes, tag) != 1) {
    crypto_failure("AES-GCM seal");
  }
  ciphers.seal_key = key;
  ciphers.seal_keyed = true;
}

bool open_sealed(const data_key& key, binding bound, std::string_view sealed, char* out) {
  if (sealed.size() < sealed_overhead) return false;
  const auto* p = bytes_of(sealed);
  if (p[0] != seal_version) return false;
  const unsigned char* nonce = p + 1;
  const unsigned char* cipher = nonce + nonce_bytes;
  const std::size_t cipher_size = sealed.size() - sealed_overhead;
  unsigned char tag[tag_bytes];
  std::memcpy(tag, cipher + cipher_size, tag_bytes);

  auto& ciphers = thread_ciphers();
  EVP_CIPHER_CTX* ctx = ciphers.open;
  int len = 0;
  auto* plain = reinterpret_cast<unsigned char*>(out);
  const bool same_key = ciphers.open_keyed && ciphers.open_key.bytes == key.bytes;
  ciphers.open_keyed = false;
  if (!ciphers.ready ||
      EVP_DecryptInit_ex(ctx, nullptr, nullptr, same_key ? nullptr : key.bytes.data(), nonce) != 1 ||
      !add_associated_data(ctx, bound, EVP_DecryptUpdate) ||
      EVP_DecryptUpdate(ctx, plain, &len, cipher, static_cast<int>(cipher_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, tag_bytes, tag) != 1) {
    return false;
  }
  // A failed tag check still leaves the key schedule intact.
  ciphers.open_key = key;
  ciphers.open_keyed = true;
  return EVP_DecryptFinal_ex(ctx, plain + len, &len) == 1;
}

std::string random_salt() {
  std::string salt(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), 32) != 1)
    crypto_failure("RAND_bytes");
  return salt;
}

}  // namespace autosync::journal
