#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  // The pipeline (docs/jobs.md): passed on to the broker, which checks
  // them again and hands them to the parse child.
  std::optional<std::string> workflow;  // without --job: run the workflow's jobs
  std::vector<std::string> params;      // --param NAME=VALUE
  std::string revision;
  std::optional<uint64_t> pipeline_number;
  std::string pipeline_id;
  std::string orb_dir;  // the local orb folder; "" = the broker's default
  std::optional<uint32_t> node_index;   // one node of a `parallelism:` job; unset: all of them
  uint32_t parallel = 1;                // nodes run at once
  std::vector<std::string> approve;     // approval jobs of the workflow to let through
};

// `gatehouse run`: checks the flags, then runs one job (all its nodes, or
// the one --node-index names) or, with --workflow and no --job, the
// workflow's jobs in order (cli/run_workflow.cpp). Returns the exit status
// (common/exit_status.hpp): the worst of the runs'.
int run_command(const RunOptions& opts);

// One run of one node: starts `gatehouse-broker run` with these settings,
// drops to nobody under seccomp, and shows the broker's events (a terminal,
// or JSON lines on --stream-fd). With report_fd >= 0, the job's node count
// from its header (u32, little-endian) is written there once, and the fd
// closed. With other_nodes, a root helper forked before the drop runs the
// job's other nodes after this one (cli/run_parent.hpp, NodeHelper).
// Returns the exit status: this run's, or the worst of all its nodes'.
int run_front_end(const RunOptions& opts, int report_fd, bool other_nodes);

}  // namespace gh::cli
