// `gatehouse config process FILE`: prints the config as this runner runs it
// (docs/jobs.md, "How a config is processed"). Exit statuses: 0 printed,
// 2 the config has errors (printed on stderr as file:line:col), 4 this
// command could not work (a fork, a pipe, its own confinement).
#pragma once

#include <string>
#include <vector>

#include "policy/job.hpp"

namespace gh::cli {

struct ConfigProcessOptions {
  std::string file;
  std::vector<std::string> params;  // NAME=VALUE
  std::string orb_dir;              // "" = the default folder
  job::ProcessInput in;
};

int config_process(ConfigProcessOptions opts);

}  // namespace gh::cli
