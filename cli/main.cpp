// gatehouse: the command line (docs/architecture.md: `run` and `serve` start
// the broker; the policy tools, `audit verify` and `sign` need no privilege).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "cli/audit_command.hpp"
#include "cli/config_command.hpp"
#include "common/exit_status.hpp"
#include "common/libexec.hpp"
#include "cli/policy_command.hpp"
#include "cli/run_command.hpp"
#include "cli/sign_command.hpp"

namespace {

// The job metadata rules match on; the same flags for `run` and `policy explain`.
void add_meta_options(CLI::App* cmd, gh::policy::JobMeta& m) {
  cmd->add_option("--project", m.project, "the job's project, e.g. acme/app");
  cmd->add_option("--branch", m.branch, "the branch being built");
  cmd->add_option("--tag", m.tag, "the tag being built");
  // A misspelt trigger would silently fall through to another rule.
  cmd->add_option("--trigger", m.trigger, "what started the job")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(gh::policy::kTriggers), std::end(gh::policy::kTriggers))));
  cmd->add_option("--signed-by", m.signed_by, "the name of the trusted key that signed the job");
}

// `gatehouse serve ARGS` is `gatehouse-broker serve ARGS`: the broker (root,
// its four capabilities) starts the agent as the user `gatehouse` and runs
// the agent's tasks (docs/architecture.md). Found beside this binary, then
// in libexec.
[[noreturn]] void exec_broker_daemon(int argc, char** argv) {
  const char* env_broker = getenv("GATEHOUSE_BROKER");
  const std::string broker = env_broker ? env_broker : gh::find_libexec("gatehouse-broker");
  std::vector<char*> args = {const_cast<char*>(broker.c_str()), const_cast<char*>("serve")};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  if (geteuid() != 0) {
    std::cerr << "gatehouse serve: run as root: it starts the broker (which maps a host uid for each job) and runs "
                 "the agent as the user `gatehouse`\n";
    _exit(gh::kBadInput);
  }
  execv(broker.c_str(), args.data());
  std::cerr << "gatehouse serve: gatehouse-broker is not installed (" << broker << ": " << strerror(errno)
            << "; looked beside this binary and in ../libexec/gatehouse): reinstall gatehouse\n";
  _exit(gh::kInfra);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "serve") exec_broker_daemon(argc, argv);
  // A closed stdout must not kill the front end mid-job (the broker would
  // take it as the job's watcher gone and cancel the job).
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Gatehouse: a hardened self-hosted CI runner agent"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gatehouse 0.2.0");

  gh::cli::RunOptions run;
  auto* cmd = app.add_subcommand("run", "run one CircleCI job on this host, now, in the sandbox");
  cmd->add_option("FILE", run.file, "a CircleCI config.yml, or a file holding one job")->required();
  cmd->add_option("--job", run.job, "the job to run when FILE has several");
  cmd->add_option("--policy", run.policy, "the policy file (default: the built-in restrictive profile)")
      ->envname("GATEHOUSE_POLICY");
  cmd->add_option("--profile", run.profile, "use this profile instead of the one the policy's rules pick");
  add_meta_options(cmd, run.meta);
  cmd->add_option("--audit-log", run.audit_log, "the audit log (default: the policy's audit.log)")
      ->envname("GATEHOUSE_AUDIT_LOG");
  cmd->add_flag("--keep", run.keep, "keep the job's folder after the job");
  cmd->add_option("--work-root", run.work_root, "where job folders are made")->envname("GATEHOUSE_WORK_ROOT")->capture_default_str();
  cmd->add_option("--lock-dir", run.lock_dir, "where uid locks live")->envname("GATEHOUSE_LOCK_DIR")->capture_default_str();
  cmd->add_option("--stream-fd", run.stream_fd, "write JSON lines to this open fd instead of text to stdout (docs/jobs.md)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--task-id", run.task_id, "the control plane's task id, recorded in the audit log");
  // The pipeline (docs/jobs.md: workflows, parallelism, pipeline values).
  cmd->add_option("--workflow", run.workflow, "run this workflow's jobs in order (with --job: the workflow the job is in)");
  cmd->add_option("--param", run.params, "NAME=VALUE: a pipeline parameter (repeatable)");
  cmd->add_option("--revision", run.revision, "the commit being built (CIRCLE_SHA1, pipeline.git.revision)");
  uint64_t pipeline_number = 0;
  auto* number_opt = cmd->add_option("--pipeline-number", pipeline_number, "pipeline.number");
  cmd->add_option("--pipeline-id", run.pipeline_id, "pipeline.id (a UUID)");
  cmd->add_option("--orb-dir", run.orb_dir, "the local orb folder (default /etc/gatehouse/orbs)")->envname("GATEHOUSE_ORB_DIR");
  uint32_t node_index = 0;
  auto* node_opt = cmd->add_option("--node-index", node_index, "run only this node of a `parallelism:` job (from 0)");
  cmd->add_option("--parallel", run.parallel, "run up to this many nodes of a job at once")->capture_default_str();
  cmd->add_option("--approve", run.approve, "let this approval job of the workflow through (repeatable)");

  // Never parsed here (main execs the broker first); listed for --help.
  app.add_subcommand("serve", "claim jobs from a control plane and run them (options: gatehouse-broker serve --help)")
      ->allow_extras();
  auto* pol = app.add_subcommand("policy", "check, explain, compare and digest policy files");
  pol->require_subcommand(1);
  std::vector<std::string> check_files;
  bool strict = false;
  auto* check = pol->add_subcommand("check", "report every error and every dangerous grant");
  check->add_option("FILE", check_files, "policy files")->required();
  check->add_flag("--strict", strict, "exit 1 on warnings too");
  gh::cli::ExplainOptions explain;
  auto* expl = pol->add_subcommand("explain", "say in plain words what jobs may do");
  expl->add_option("FILE", explain.file, "a policy file")->required();
  expl->add_option("--profile", explain.profile, "explain this profile only");
  add_meta_options(expl, explain.meta);
  expl->add_option("--job", explain.meta.job, "the job's name");
  std::string diff_old, diff_new;
  auto* dif = pol->add_subcommand("diff", "list what NEW widens, narrows and keeps; exit 1 when it widens");
  dif->add_option("OLD", diff_old, "the policy as it is")->required();
  dif->add_option("NEW", diff_new, "the policy as proposed")->required();
  std::string digest_file;
  bool canonical = false;
  auto* dig = pol->add_subcommand("digest", "print the SHA-256 of the policy's canonical form");
  dig->add_option("FILE", digest_file, "a policy file")->required();
  dig->add_flag("--canonical", canonical, "print the canonical form itself");

  gh::cli::ConfigProcessOptions process;
  auto* cfg = app.add_subcommand("config", "work with CircleCI configs");
  cfg->require_subcommand(1);
  auto* proc = cfg->add_subcommand("process", "print the config as gatehouse runs it: orbs, executors, commands, "
                                              "parameters and conditions expanded");
  proc->add_option("FILE", process.file, "a CircleCI config.yml")->required();
  proc->add_option("--job", process.in.job_name, "that job only");
  proc->add_option("--param", process.params, "a pipeline parameter, NAME=VALUE (repeatable)");
  proc->add_option("--orb-dir", process.orb_dir, "the local orb folder (default /etc/gatehouse/orbs)")
      ->envname("GATEHOUSE_ORB_DIR");
  proc->add_option("--branch", process.in.branch, "<< pipeline.git.branch >>");
  proc->add_option("--tag", process.in.tag, "<< pipeline.git.tag >>");
  proc->add_option("--revision", process.in.revision, "<< pipeline.git.revision >>");
  proc->add_option("--pipeline-number", process.in.number, "<< pipeline.number >>");

  auto* aud = app.add_subcommand("audit", "work with the audit log");
  aud->require_subcommand(1);
  std::string audit_file = gh::policy::kDefaultAuditLog;
  auto* verify = aud->add_subcommand("verify", "prove the hash chain unbroken, or name the first bad line");
  verify->add_option("FILE", audit_file, "the audit log")->capture_default_str();

  gh::cli::SignOptions sign;
  auto* sgn = app.add_subcommand("sign", "sign a job for the control plane, make a key, or check a signature");
  sgn->add_option("CONFIG", sign.config_file, "the job's config file, signed byte for byte");
  sgn->add_option("--key", sign.key_file, "the Ed25519 private key (PEM, mode 0600) to sign with");
  sgn->add_option("--key-name", sign.key_name, "the name the policy trusts the key under");
  sgn->add_option("--generate-key", sign.generate_key_out, "write a new private key here and print its public key");
  sgn->add_option("--verify", sign.verify_file, "check this signature (JSON object, or null) against --policy");
  sgn->add_option("--policy", sign.policy_file, "with --verify: the policy whose trusted keys decide");
  sgn->add_option("--job", sign.job, "the job's name");
  sgn->add_option("--project", sign.meta.project, "the job's project, e.g. acme/app");
  sgn->add_option("--branch", sign.meta.branch, "the branch being built");
  sgn->add_option("--tag", sign.meta.tag, "the tag being built");
  sgn->add_option("--trigger", sign.meta.trigger, "what started the job")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(gh::policy::kTriggers), std::end(gh::policy::kTriggers))));
  sgn->add_option("--revision", sign.meta.revision, "the commit being built");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : gh::kBadInput;
  }
  if (cmd->parsed()) {
    if (number_opt->count()) run.pipeline_number = pipeline_number;
    if (node_opt->count()) run.node_index = node_index;
    return gh::cli::run_command(run);
  }
  if (check->parsed()) return gh::cli::policy_check(check_files, strict);
  if (expl->parsed()) {
    const auto& m = explain.meta;
    explain.by_meta = !(m.project.empty() && m.branch.empty() && m.tag.empty() && m.trigger.empty() &&
                        m.job.empty() && m.signed_by.empty());
    return gh::cli::policy_explain(explain);
  }
  if (dif->parsed()) return gh::cli::policy_diff(diff_old, diff_new);
  if (dig->parsed()) return gh::cli::policy_digest(digest_file, canonical);
  if (verify->parsed()) return gh::cli::audit_verify_command(audit_file);
  if (proc->parsed()) return gh::cli::config_process(process);
  if (sgn->parsed()) return gh::cli::sign_command(sign);
  return gh::kBadInput;
}
