// The proxy's config: JobRules as JSON. The broker writes it (from the
// policy profile and the job's mount plan) into a memfd the proxy reads
// once at start; nothing else configures the proxy.
#pragma once

#include <string>

#include "common/result.hpp"
#include "docker/proxy.hpp"

namespace gh::docker {

std::string rules_to_json(const JobRules& r);
// Strict: every key known, every value of its type; the text names the key.
Result<JobRules> rules_from_json(const std::string& text);

}  // namespace gh::docker
