// TEMPORARY: parses in-process until the parse child lands (issue 11);
// replaced by broker/parse_client.cpp calls.
#include "broker/loaders.hpp"

#include "agent/config.hpp"
#include "broker/broker.hpp"
#include "broker/checkout.hpp"
#include "broker/filter_cache.hpp"

namespace gh::broker {

const sandbox::SeccompProgram* LoadedPolicy::filter_of(const policy::Profile& p) const {
  for (size_t i = 0; i < policy.profiles.size() && i < filters.size(); ++i)
    if (policy.profiles[i].name == p.name) return &filters[i];
  return nullptr;
}

namespace {

Result<LoadedPolicy, LoadError> finish(LoadedPolicy out) {
  out.digest = policy::policy_digest(out.policy);
  for (const auto& p : out.policy.profiles) {
    auto f = cached_seccomp({p.seccomp.allow, p.seccomp.deny}, "/run/gatehouse/seccomp");
    if (!f) return LoadError{kInfra, "gatehouse: infrastructure error: seccomp: " + f.error().message + "\n", "seccomp: " + f.error().message};
    out.filters.push_back(std::move(*f));
  }
  return out;
}

}  // namespace

Result<LoadedPolicy, LoadError> load_policy_text(const std::string& text, const std::string& path) {
  LoadedPolicy out;
  auto pol = policy::parse_policy_text(path, text);
  if (!pol.policy) return LoadError{kBadInput, pol.diagnostics.render(), "the policy " + path + " has errors"};
  out.policy = std::move(*pol.policy);
  out.path = path;
  return finish(std::move(out));
}

Result<LoadedPolicy, LoadError> load_policy(const std::optional<std::string>& path) {
  if (!path) {
    LoadedPolicy out;
    out.policy = policy::builtin_policy();
    return finish(std::move(out));
  }
  auto text = read_file_as_owner(*path, policy::kMaxPolicyFileBytes + 1);
  if (!text) return LoadError{kBadInput, *path + ": error: " + text.error().message + "\n", "the policy " + *path + " has errors"};
  return load_policy_text(*text, *path);
}

Result<ServeSettings, LoadError> load_settings(const std::string& path, const std::map<std::string, std::string>& env) {
  auto text = read_file_as_owner(path, agent::kMaxAgentConfigBytes + 1);
  if (!text) return LoadError{kBadInput, path + ": error: " + text.error().message + "\n", "the configuration " + path + " has errors"};
  auto c = agent::parse_agent_config(path, *text, env, true);
  if (!c.config) return LoadError{kBadInput, c.diagnostics.render(), "the configuration " + path + " has errors"};
  ServeSettings s;
  s.runner_name = c.config->runner.name;
  s.working_directory = c.config->runner.working_directory;
  s.cleanup_working_directory = c.config->runner.cleanup_working_directory;
  s.uid_lock_directory = c.config->runner.uid_lock_directory;
  s.spool_directory = c.config->runner.spool_directory;
  s.policy = c.config->policy;
  s.auth_token_file = c.config->api.auth_token_file;
  s.metrics_listen = c.config->metrics_listen;
  s.logging_file = c.config->logging.file;
  return s;
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
