// gatehouse-broker: the only Gatehouse process with host privilege
// (docs/architecture.md). `gatehouse run` starts `gatehouse-broker run`
// for one job; `gatehouse serve` (or systemd) starts
// `gatehouse-broker serve`, which runs the agent's tasks.
//
// Whatever started it, the first thing it does is drop to the broker's
// four capabilities (privileges.hpp); everything it reads after that is
// typed (ipc/), from processes it treats as hostile.
#include <signal.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "broker/daemon.hpp"
#include "broker/job_runner.hpp"
#include "broker/privileges.hpp"
#include "common/exit_status.hpp"
#include "policy/job.hpp"
#include "policy/pipeline_flags.hpp"

namespace {

void add_meta(CLI::App* cmd, gh::policy::JobMeta& m) {
  cmd->add_option("--project", m.project);
  cmd->add_option("--branch", m.branch);
  cmd->add_option("--tag", m.tag);
  cmd->add_option("--trigger", m.trigger);  // checked by the runner: a bad one is refused with a result
}

// The pipeline's values (job::ProcessInput), checked by the runner
// (pipeline_problem) so that a bad one ends with a Result, not a usage line.
void add_pipeline(CLI::App* cmd, gh::broker::JobRequest& req, std::vector<std::string>& params) {
  cmd->add_option("--workflow", req.workflow);
  cmd->add_option("--param", params, "NAME=VALUE, a pipeline parameter (repeatable)");
  cmd->add_option("--revision", req.revision);
  cmd->add_option("--pipeline-number", req.pipeline_number);
  cmd->add_option("--pipeline-id", req.pipeline_id);
  cmd->add_option("--orb-dir", req.orb_dir, "the local orb folder (docs/jobs.md, \"Orbs\")");
}

}  // namespace

int main(int argc, char** argv) {
  // A closed client must not kill the broker mid-job (the job would die
  // with it and its folder be left for the next sweep). Cancels are read,
  // not taken as signals: they wait until the job can be stopped cleanly.
  signal(SIGPIPE, SIG_IGN);
  sigset_t cancel;
  sigemptyset(&cancel);
  sigaddset(&cancel, SIGINT);
  sigaddset(&cancel, SIGTERM);
  sigprocmask(SIG_BLOCK, &cancel, nullptr);

  CLI::App app{"gatehouse-broker: runs jobs for `gatehouse run` and `gatehouse serve` (not for direct use)"};
  app.require_subcommand(1);

  gh::broker::JobRequest req;
  std::vector<std::string> params;
  int client_fd = -1, text_fd = -1;
  std::string signature_key, signature_b64;
  bool has_signature = false;
  auto* run = app.add_subcommand("run", "run one job; events on --client-fd");
  run->add_option("--client-fd", client_fd, "the client channel")->required();
  run->add_option("--file", req.file, "the job file");
  run->add_option("--text-fd", text_fd, "read the job's text from this fd (a task)");
  run->add_option("--display", req.display, "what the job is called in messages (a task)");
  run->add_option("--job", req.job);
  run->add_option("--policy", req.policy);
  run->add_option("--profile", req.profile);
  add_meta(run, req.meta);
  run->add_option("--signed-by", req.meta.signed_by, "the operator's word for the job's signer (gatehouse run)");
  run->add_flag("--check-signature", req.check_signature, "a task: check its signature against the policy");
  add_pipeline(run, req, params);
  run->add_option("--node-index", req.node_index, "which node of a `parallelism:` job this run is");
  run->add_option("--signature-key", signature_key);
  run->add_option("--signature-ed25519", signature_b64);
  run->add_flag("--signed", has_signature, "the task carries a signature");
  run->add_option("--audit-log", req.audit_log);
  run->add_flag("--keep", req.keep);
  run->add_option("--work-root", req.work_root);
  run->add_option("--lock-dir", req.lock_dir);
  run->add_option("--task-id", req.task_id);
  run->add_option("--uid-slice-index", req.uid_slice_index, "runner.uid_slice.index (a task)");
  run->add_option("--uid-slice-count", req.uid_slice_count, "runner.uid_slice.count (a task)");

  // A workflow's plan for the front end, before any of its jobs runs.
  auto* plan = app.add_subcommand("plan", "a workflow's jobs in order; one Plan message on --client-fd");
  plan->add_option("--client-fd", client_fd, "the client channel")->required();
  plan->add_option("--file", req.file, "the config")->required();
  plan->add_option("--policy", req.policy);
  add_meta(plan, req.meta);
  add_pipeline(plan, req, params);

  gh::broker::DaemonOptions dopts;
  auto* serve = app.add_subcommand("serve", "run the agent's tasks (gatehouse serve; docs/agent.md)");
  gh::broker::add_daemon_options(serve, dopts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : gh::kBadInput;
  }
  // SHA-256 (audit chain, policy cache, digests) and Ed25519 need no
  // OpenSSL configuration; reading it costs a millisecond of every job.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
  if (auto s = gh::broker::drop_to_broker_privileges(); !s) {
    std::cerr << "gatehouse: infrastructure error: " << s.error().message << "\n";
    return gh::kInfra;
  }

  if (serve->parsed()) return gh::broker::run_daemon(dopts);
  for (const auto& p : params)
    if (auto why = gh::job::add_param(p, req.parameters); !why.empty() && req.flag_problem.empty()) req.flag_problem = why;
  if (plan->parsed()) return gh::broker::run_plan_request(req, client_fd);
  if (has_signature) req.signature = gh::protocol::Signature{signature_key, signature_b64};
  if (text_fd >= 0) {
    // The task's text, from the daemon: bounded like a job file.
    std::string text;
    char buf[65536];
    ssize_t n;
    while ((n = read(text_fd, buf, sizeof buf)) > 0 && text.size() <= gh::job::kMaxJobFileBytes)
      text.append(buf, static_cast<size_t>(n));
    close(text_fd);
    req.text = std::move(text);
  }
  return gh::broker::run_job_request(req, client_fd);
}
