#include "common/audit_chain.hpp"

#include <openssl/evp.h>

namespace gh::audit {

std::string serialize(const nlohmann::json& record) {
  return record.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // One-shot EVP_Digest cannot fail for SHA-256 short of allocation
  // failure; if it does, an empty hash never matches anything.
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace gh::audit
