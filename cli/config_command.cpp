// `gatehouse config process` (config_command.hpp).
//
// The config is hostile input, so it is processed in a child that holds
// nothing: nobody (when started as root), no_new_privs and the front end's
// seccomp allowlist (no open, no exec, no socket). Orbs are read by this
// process: the child names the ones the config uses on a pipe, this
// process checks the names (common/orb_folder.hpp), reads the files and
// starts a new child with them, as the broker does with the parse child.
#include "cli/config_command.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "cli/confine.hpp"
#include "common/exit_status.hpp"
#include "common/orb_folder.hpp"
#include "common/yaml_util.hpp"
#include "policy/config_output.hpp"

namespace gh::cli {

namespace {

constexpr int kNeedsOrbs = 10;  // the child's status when it names orbs on the pipe
constexpr size_t kMaxOrbNames = job::kMaxOrbs * 200;

// In the child: process, print, exit. Never returns.
[[noreturn]] void child(const std::string& file, const std::string& text, const job::ProcessInput& in, int names_fd) {
  if (auto s = confine_self(); !s) {
    std::cerr << "gatehouse config process: cannot confine the processing child: " << s.error().message << "\n";
    _exit(kInfra);
  }
  auto out = job::process_config_text(file, text, in);
  if (!out.needed_orbs.empty()) {
    std::string names;
    for (const auto& n : out.needed_orbs) names += n + "\n";
    const bool ok = write(names_fd, names.data(), names.size()) == static_cast<ssize_t>(names.size());
    _exit(ok ? kNeedsOrbs : kInfra);
  }
  std::cerr << out.diagnostics.render();
  if (out.diagnostics.has_errors()) {
    std::cerr.flush();
    _exit(kBadInput);
  }
  std::cout << out.text;
  std::cout.flush();
  _exit(std::cout ? kPassed : kInfra);
}

// Runs one child; the orbs it asked for in `names`, or its exit status.
int run_child(const std::string& file, const std::string& text, const job::ProcessInput& in, std::string& names) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return kInfra;
  std::cout.flush();
  const pid_t pid = fork();
  if (pid < 0) return kInfra;
  if (pid == 0) {
    close(p[0]);
    child(file, text, in, p[1]);
  }
  close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0 && names.size() <= kMaxOrbNames) names.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return kInfra;
  return WEXITSTATUS(status);
}

}  // namespace

int config_process(ConfigProcessOptions opts) {
  job::ProcessInput& in = opts.in;
  for (const auto& p : opts.params) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "gatehouse config process: --param " << p << ": expected NAME=VALUE\n";
      return kBadInput;
    }
    in.parameters.emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  in.orb_directory = opts.orb_dir.empty() ? kDefaultOrbDirectory : opts.orb_dir;
  Diagnostics d(opts.file);
  auto text = yaml::read_file_limited(opts.file, job::kMaxJobFileBytes, "config " + opts.file, d);
  if (!text) {
    std::cerr << d.render();
    return kBadInput;
  }
  for (int round = 0; round < 2; ++round) {
    std::string names;
    const int rc = run_child(opts.file, *text, in, names);
    if (rc != kNeedsOrbs) return rc;
    if (round == 1) break;
    for (size_t i = 0; i < names.size();) {
      size_t j = names.find('\n', i);
      if (j == std::string::npos) break;
      const std::string ref = names.substr(i, j - i);
      i = j + 1;
      auto path = find_orb_file(in.orb_directory, ref);
      if (!path) {
        std::cerr << "gatehouse config process: " << path.error().message << "\n";
        return kInfra;
      }
      std::string orb;
      if (*path) {
        Diagnostics od(**path);
        auto t = yaml::read_file_limited(**path, job::kMaxJobFileBytes, "orb " + **path, od);
        if (!t) {
          std::cerr << od.render();
          return kBadInput;
        }
        orb = std::move(*t);
      }
      in.orbs.emplace_back(ref, std::move(orb));
    }
  }
  std::cerr << "gatehouse config process: the processing child asked for orbs it was given\n";
  return kInfra;
}

}  // namespace gh::cli
