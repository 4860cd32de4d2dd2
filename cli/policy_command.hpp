// `gatehouse policy check|explain|diff|digest`: the tools operators and
// reviewers read a policy with. Exit statuses:
//   check    0 clean (warnings allowed), 1 warnings with --strict, 2 errors
//   explain  0, or 2 when the file has errors
//   diff     0 nothing widened, 1 something widened, 2 either file has errors
//   digest   0, or 2 when the file has errors
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace gh::cli {

int policy_check(const std::vector<std::string>& files, bool strict);

struct ExplainOptions {
  std::string file;
  std::optional<std::string> profile;  // --profile NAME: that profile only
  bool by_meta = false;                // --project/--branch/... given: the rule they select
  policy::JobMeta meta;
};
int policy_explain(const ExplainOptions& opts);

int policy_diff(const std::string& old_file, const std::string& new_file);

// With `canonical`, prints the canonical form instead of the digest.
int policy_digest(const std::string& file, bool canonical);

}  // namespace gh::cli
