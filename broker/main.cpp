// gatehouse: the broker's command line.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "broker/broker.hpp"
#include "broker/run_command.hpp"

int main(int argc, char** argv) {
  // A closed stdout must not kill the broker mid-job (the job would die
  // with it and its folder be left for the next sweep).
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Gatehouse: a hardened self-hosted CI runner agent"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gatehouse 0.1.0");

  gh::broker::RunOptions run;
  auto* cmd = app.add_subcommand("run", "run one CircleCI job on this host, now, in the sandbox");
  cmd->add_option("FILE", run.file, "a CircleCI config.yml, or a file holding one job")->required();
  cmd->add_option("--job", run.job, "the job to run when FILE has several");
  cmd->add_option("--policy", run.policy, "a policy file (default: the built-in restrictive profile)");
  cmd->add_option("--profile", run.profile, "the profile of the policy file to use")->capture_default_str();
  cmd->add_flag("--keep", run.keep, "keep the job's folder after the job");
  cmd->add_option("--work-root", run.work_root, "where job folders are made")->envname("GATEHOUSE_WORK_ROOT")->capture_default_str();
  cmd->add_option("--lock-dir", run.lock_dir, "where uid locks live")->envname("GATEHOUSE_LOCK_DIR")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : gh::broker::kBadInput;
  }
  if (cmd->parsed()) return gh::broker::run_command(run);
  return gh::broker::kBadInput;
}
