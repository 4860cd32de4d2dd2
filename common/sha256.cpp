// OpenSSL's direct SHA-256 functions, not EVP_Digest: the EVP route looks
// the algorithm up among OpenSSL's providers first, and building that name
// table is about 3.5 million instructions, a millisecond of every
// `gatehouse run` (the broker hashes its audit records). These functions
// are deprecated in OpenSSL 3 but kept, and compute the same digest.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "common/sha256.hpp"

#include <openssl/sha.h>

namespace gh {

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, bytes.data(), bytes.size());
  SHA256_Final(md, &ctx);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof md);
  for (unsigned char c : md) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace gh
