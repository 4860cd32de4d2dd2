#include "common/audit_chain.hpp"

#include "common/sha256.hpp"

namespace gh::audit {

std::string serialize(const nlohmann::json& record) {
  return record.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

std::string sha256_hex(std::string_view bytes) { return gh::sha256_hex(bytes); }

}  // namespace gh::audit
