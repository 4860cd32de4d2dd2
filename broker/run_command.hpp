#pragma once

#include <optional>
#include <string>

#include "policy/policy.hpp"

namespace gh::broker {

struct RunOptions {
  std::string file;
  std::optional<std::string> job;
  std::optional<std::string> policy;
  std::optional<std::string> profile;  // operator's override of the rules
  policy::JobMeta meta;                // what the rules match on (meta.job: the job's name)
  std::optional<std::string> audit_log;
  bool keep = false;
  std::string work_root = "/var/lib/gatehouse/work";
  std::string lock_dir = "/run/gatehouse/uids";
  std::string worker_path;  // empty: next to the gatehouse binary, then libexec
  // JSON lines to this fd instead of text to stdout (docs/jobs.md); -1: off.
  int stream_fd = -1;
  std::optional<std::string> task_id;  // the control plane's task, for the audit log
};

// `gatehouse run`: returns the process exit status (broker.hpp's Exit).
int run_command(const RunOptions& opts);

}  // namespace gh::broker
