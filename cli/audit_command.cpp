// `gatehouse audit verify FILE`.
#include "cli/audit_command.hpp"

#include <iostream>

#include "cli/audit_verify.hpp"

namespace gh::cli {

int audit_verify_command(const std::string& path) {
  VerifyResult r = verify_audit_log(path);
  if (r.ok) {
    std::cout << path << ": " << r.records << " records, chain unbroken, last hash " << r.last_hash << "\n";
    return 0;
  }
  if (r.bad_line == 0) {
    std::cerr << path << ": " << r.why << "\n";
    return 2;
  }
  // The lines before the bad one still verify: say how far the chain holds.
  std::cerr << path << ":" << r.bad_line << ": " << r.why << "\n"
            << path << ": the first " << r.records << " records verify; the last of them hashes to " << r.last_hash
            << "\n";
  return 1;
}

}  // namespace gh::cli
