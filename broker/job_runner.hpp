// One job, from admission to the verdict: `gatehouse-broker run`. Started
// by the `gatehouse run` front end (with the operator's flags) or by the
// broker daemon (one task of the agent's); its events go to that client
// over the client channel (ipc/broker_messages.hpp).
#pragma once

#include <optional>
#include <string>

#include "policy/job.hpp"
#include "policy/policy.hpp"
#include "protocol/protocol.hpp"

namespace gh::broker {

struct JobRequest {
  // Where the job comes from: a file (read as the owner of its folder) or,
  // for a task of the agent's, its text (then `display` names it).
  std::string file;
  std::optional<std::string> text;
  std::string display;
  std::optional<std::string> job;
  std::optional<std::string> policy;   // the policy file; unset: the built-in policy
  std::optional<std::string> profile;  // the operator's override of the rules
  policy::JobMeta meta;                // what the rules match on
  // A task of the agent's: its signature is checked here, against the
  // policy's trusted keys, and only that check sets meta.signed_by.
  bool check_signature = false;
  std::string revision;  // the commit: CIRCLE_SHA1, << pipeline.git.revision >>
  // The pipeline's values (job::ProcessInput): --workflow (with --job, the
  // workflow the job's name is in: a matrix-expanded name), --param,
  // --pipeline-number, --pipeline-id.
  std::optional<std::string> workflow;
  job::EnvList parameters;
  uint64_t pipeline_number = 0;
  std::string pipeline_id;
  std::string orb_dir;  // the local orb folder; "" = /etc/gatehouse/orbs
  // Which node of a `parallelism: N` job this run is (CIRCLE_NODE_INDEX);
  // refused when the job has no such node.
  uint32_t node_index = 0;
  // A flag the command line could not take (a --param without `=`...):
  // the run ends with it as a Result, like every other refusal.
  std::string flag_problem;
  std::optional<protocol::Signature> signature;
  std::optional<std::string> audit_log;
  bool keep = false;
  std::string work_root = "/var/lib/gatehouse/work";
  std::string lock_dir = "/run/gatehouse/uids";
  std::optional<std::string> task_id;
  // The daemon's runner.uid_slice: uids come only from this slice of the
  // profile's pool (broker/runner_lock.hpp). 0 of 1 is the whole pool.
  uint32_t uid_slice_index = 0;
  uint32_t uid_slice_count = 1;
};

// Runs the job; every way it ends is a Result event on `client_fd` (a
// stream socket, also read for Cancel). Returns the exit status
// (common/exit_status.hpp).
int run_job_request(const JobRequest& req, int client_fd);

// "" or what is wrong with the request's pipeline values (--param names,
// --pipeline-id, --revision, --node-index), checked before anything else.
std::string pipeline_problem(const JobRequest& req);
// What the parse child is asked with: the job, the workflow, the pipeline.
job::ProcessInput process_input(const JobRequest& req);

// `gatehouse-broker plan`: the workflow `req.workflow` of `req.file` as ONE
// Plan message on `client_fd` (ipc/broker_messages.hpp), or Diagnostic and
// Result when it cannot be planned. Runs nothing; returns the exit status.
int run_plan_request(const JobRequest& req, int client_fd);

}  // namespace gh::broker
