// TEMPORARY: parses in-process until the parse child lands (issue 11);
// replaced by broker/parse_client.cpp calls.
#include "broker/loaders.hpp"

#include "broker/broker.hpp"
#include "broker/filter_cache.hpp"

namespace gh::broker {

const sandbox::SeccompProgram* LoadedPolicy::filter_of(const policy::Profile& p) const {
  for (size_t i = 0; i < policy.profiles.size() && i < filters.size(); ++i)
    if (policy.profiles[i].name == p.name) return &filters[i];
  return nullptr;
}

Result<LoadedPolicy, LoadError> load_policy(const std::optional<std::string>& path) {
  LoadedPolicy out;
  if (path) {
    auto text = read_file_as_owner(*path, policy::kMaxPolicyFileBytes + 1);
    if (!text) return LoadError{kBadInput, *path + ": error: " + text.error().message + "\n", "the policy " + *path + " has errors"};
    auto pol = policy::parse_policy_text(*path, *text);
    if (!pol.policy) return LoadError{kBadInput, pol.diagnostics.render(), "the policy " + *path + " has errors"};
    out.policy = std::move(*pol.policy);
    out.path = *path;
  } else {
    out.policy = policy::builtin_policy();
  }
  out.digest = policy::policy_digest(out.policy);
  for (const auto& p : out.policy.profiles) {
    auto f = cached_seccomp({p.seccomp.allow, p.seccomp.deny}, "/run/gatehouse/seccomp");
    if (!f) return LoadError{kInfra, "gatehouse: infrastructure error: seccomp: " + f.error().message + "\n", "seccomp: " + f.error().message};
    out.filters.push_back(std::move(*f));
  }
  return out;
}

Result<LoadedJob, LoadError> load_job(const std::string& text, const std::string& display,
                                      const std::optional<std::string>& job_name) {
  auto parsed = job::parse_job_text(display, text, job_name);
  if (!parsed.job) {
    std::string d = parsed.diagnostics.render();
    if (!parsed.available_jobs.empty()) {
      d += "available jobs:";
      for (auto& j : parsed.available_jobs) d += " " + j;
      d += "\n";
    }
    return LoadError{kBadInput, d, "the job file " + display + " has errors"};
  }
  return LoadedJob{std::move(*parsed.job)};
}

}  // namespace gh::broker
