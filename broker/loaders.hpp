// The policy and the job as the broker receives them: typed, from the parse
// child (gatehouse-parse), which turned the text into data with nothing but
// the bytes. The broker never parses YAML itself.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "policy/job.hpp"
#include "policy/policy.hpp"
#include "sandbox/seccomp.hpp"

namespace gh::broker {

// Why a load failed, as the job's run reports it.
struct LoadError {
  int exit_code = 0;        // kBadInput: the text has errors; kInfra: the parse child failed
  std::string diagnostics;  // shown to the operator (rendered file:line:col errors)
  std::string reason;       // one line, for the result and the audit log
};

struct LoadedPolicy {
  policy::Policy policy;
  std::string path;    // "" for the built-in policy
  std::string digest;  // SHA-256 of the canonical form
  // The compiled seccomp filter of each profile, in policy.profiles' order.
  std::vector<sandbox::SeccompProgram> filters;
  const sandbox::SeccompProgram* filter_of(const policy::Profile& p) const;
};

// The operator's policy file (read as the owner of its folder), or the
// built-in policy when `path` is unset.
Result<LoadedPolicy, LoadError> load_policy(const std::optional<std::string>& path);
// The same from text already read (the daemon keeps the bytes it checked).
Result<LoadedPolicy, LoadError> load_policy_text(const std::string& text, const std::string& path);

// What the daemon takes from the agent's configuration file
// (/etc/gatehouse/gatehouse.yaml, with GATEHOUSE_* overrides from `env`).
struct ServeSettings {
  std::string runner_name;
  std::string working_directory;
  bool cleanup_working_directory = true;
  std::string uid_lock_directory;
  std::string orb_directory;
  std::string spool_directory;
  std::string policy;
  bool policy_set = false;  // named in the config; else `policy` is the default path
  std::string auth_token_file;
  std::string metrics_listen;
  std::string logging_file;
  std::string lock_directory;  // runner.lock_directory
  uint32_t uid_slice_index = 0, uid_slice_count = 1;  // runner.uid_slice
};
Result<ServeSettings, LoadError> load_settings(const std::string& path, const std::map<std::string, std::string>& env);

struct LoadedJob {
  job::Job job;
};
// The job text (hostile), parsed in the parse child; `display` names it in
// messages (the job file's path, or the task).
Result<LoadedJob, LoadError> load_job(const std::string& text, const std::string& display,
                                      const job::ProcessInput& in);

}  // namespace gh::broker
