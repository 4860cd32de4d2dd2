// `gatehouse config process`: the whole config as this runner runs it, like
// `circleci config process` prints it: every job with its executor merged,
// its commands and conditions expanded and its parameters filled in, under
// the name a workflow gives it; then the workflows with matrices expanded.
#pragma once

#include <string>
#include <vector>

#include "common/diagnostics.hpp"
#include "policy/job.hpp"

namespace gh::job {

struct ConfigOutput {
  std::string text;                       // the processed config (when no errors)
  Diagnostics diagnostics;
  std::vector<std::string> needed_orbs;   // as ParseOutcome::needed_orbs
};

// in.job_name: that job only (a `jobs:` key or a workflow's name for one).
ConfigOutput process_config_text(const std::string& display, const std::string& text, const ProcessInput& in);

}  // namespace gh::job
