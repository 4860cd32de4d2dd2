#pragma once

#include <optional>
#include <string>

#include "policy/policy.hpp"

namespace gh::cli {

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
  // JSON lines to this fd instead of text to stdout (docs/jobs.md); -1: off.
  int stream_fd = -1;
  std::optional<std::string> task_id;  // the control plane's task, for the audit log
};

// `gatehouse run`: starts `gatehouse-broker run` with these settings, drops
// to nobody under seccomp, and shows the broker's events (a terminal, or
// JSON lines on --stream-fd). Returns the job's exit status
// (common/exit_status.hpp).
int run_command(const RunOptions& opts);

}  // namespace gh::cli
