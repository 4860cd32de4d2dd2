// The job model: the CircleCI-compatible subset this machine runner runs.
// Parsed from a job file (hostile input: it comes from the repository being
// built), validated strictly, and handed to the broker as plain data.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/diagnostics.hpp"

namespace gh::job {

using EnvList = std::vector<std::pair<std::string, std::string>>;

enum class When { OnSuccess, OnFail, Always };

struct RunStep {
  std::string name;     // display name: `name:` or the command's first line
  std::string command;  // the script text
  EnvList environment;  // step-level, applied over the job's
  std::string working_directory;  // empty: the job's
  // Unset: the profile's resources.no_output_timeout (default 10 minutes).
  std::optional<std::chrono::seconds> no_output_timeout;
  When when = When::OnSuccess;
  std::string shell;    // empty: /bin/bash -eo pipefail (or /bin/sh -eo pipefail)
  bool background = false;
};

struct CheckoutStep {
  std::string path;  // empty: the job's working directory
};

struct Step {
  enum class Kind { Checkout, Run };
  Kind kind = Kind::Run;
  RunStep run;            // valid when kind == Run
  CheckoutStep checkout;  // valid when kind == Checkout
  Mark mark;              // where the step starts in the file
};

struct Job {
  std::string name;         // the key under `jobs:`, or the file's stem
  std::string source_file;  // path as given on the command line
  EnvList environment;
  std::string working_directory = "~/project";
  std::string shell;             // job-level default shell; empty: default
  std::string resource_class;    // recorded, shown, not used for routing here
  std::vector<Step> steps;
};

// Limits on hostile job files, checked before the YAML is parsed.
inline constexpr size_t kMaxJobFileBytes = 1 << 20;  // 1 MiB
inline constexpr size_t kMaxSteps = 1000;
inline constexpr size_t kMaxCommandBytes = 256 * 1024;
inline constexpr size_t kMaxEnvEntries = 1000;

struct ParseOutcome {
  std::optional<Job> job;    // set only when diagnostics has no errors
  Diagnostics diagnostics;   // all errors found, rendered by the caller
  std::vector<std::string> available_jobs;  // filled when the choice is ambiguous or wrong
};

// Parses FILE: a CircleCI config.yml (`version: 2` or `2.1`, a `jobs:` map;
// `job_name` picks one, or the only job is taken) or a file holding one job
// (`steps:` at its top). Refusals of features this runner does not have
// (a `docker:` executor, `save_cache` and friends, orbs) are errors with a
// named reason at the offending line.
ParseOutcome parse_job_file(const std::string& path, const std::optional<std::string>& job_name);

// Same, from text already in memory (used by tests and the fuzzer).
ParseOutcome parse_job_text(const std::string& display_path, const std::string& text,
                            const std::optional<std::string>& job_name);

}  // namespace gh::job
