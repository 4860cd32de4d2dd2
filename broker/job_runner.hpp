// One job, from admission to the verdict: `gatehouse-broker run`. Started
// by the `gatehouse run` front end (with the operator's flags) or by the
// broker daemon (one task of the agent's); its events go to that client
// over the client channel (ipc/broker_messages.hpp).
#pragma once

#include <optional>
#include <string>

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
  std::string revision;
  std::optional<protocol::Signature> signature;
  std::optional<std::string> audit_log;
  bool keep = false;
  std::string work_root = "/var/lib/gatehouse/work";
  std::string lock_dir = "/run/gatehouse/uids";
  std::optional<std::string> task_id;
};

// Runs the job; every way it ends is a Result event on `client_fd` (a
// stream socket, also read for Cancel). Returns the exit status
// (common/exit_status.hpp).
int run_job_request(const JobRequest& req, int client_fd);

}  // namespace gh::broker
