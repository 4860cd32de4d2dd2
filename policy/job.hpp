// The job model: the CircleCI-compatible subset this machine runner runs.
// Parsed from a job file (hostile input: it comes from the repository being
// built), validated strictly, and handed to the broker as plain data.
#pragma once

#include <chrono>
#include <cstdint>
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
  std::string resource_class;    // `resource_class:` (job or machine), "" when not named
  Mark resource_class_mark;
  std::string machine_image;     // `machine: image:`, "" when not named
  Mark machine_image_mark;
  uint32_t parallelism = 1;      // `parallelism:`: how many nodes run the job
  std::vector<Step> steps;
};

// Pipeline values that `<< pipeline.* >>` reads and workflow filters match,
// and what was asked for. Everything here is caller input (flags, the
// control plane's task), not file content.
struct ProcessInput {
  std::optional<std::string> job_name;   // --job: a job's name, or a workflow's name for it (matrix)
  std::optional<std::string> workflow;   // --workflow
  EnvList parameters;                    // --param NAME=VALUE: pipeline parameters, as text
  std::string project;                   // pipeline.project.slug-ish: what rules match on
  std::string branch, tag, revision;     // pipeline.git.branch / .tag / .revision
  uint64_t number = 0;                   // pipeline.number
  std::string id;                        // pipeline.id
  // Orbs the broker read from the local orb folder: "ns/name@version" -> the
  // orb's packed YAML. parse_job_text names the ones it needs and did not get
  // (ParseOutcome::needed_orbs); the caller reads them and asks again.
  std::vector<std::pair<std::string, std::string>> orbs;
  std::string orb_directory;             // shown in "not found" messages
};

// One workflow's jobs in the order they run (dependencies first).
struct WorkflowJob {
  std::string name;                   // the invocation's name (`name:`, the matrix-expanded name, or the job)
  std::vector<std::string> needs;  // its `requires:`: names of earlier entries
  uint32_t parallelism = 1;
  bool approval = false;           // `type: approval`: a hold; its dependants wait for --approve
};
struct WorkflowPlan {
  std::string name;
  std::vector<WorkflowJob> jobs;
  std::vector<std::string> filtered_out;  // invocations whose `filters` do not match the branch/tag
};

// Limits on hostile job files, checked before the YAML is parsed.
inline constexpr size_t kMaxJobFileBytes = 1 << 20;  // 1 MiB
inline constexpr size_t kMaxSteps = 1000;
inline constexpr size_t kMaxCommandBytes = 256 * 1024;
inline constexpr size_t kMaxEnvEntries = 1000;
inline constexpr uint32_t kMaxParallelism = 100;       // nodes of one job
inline constexpr size_t kMaxPipelineParameters = 256;  // --param
inline constexpr size_t kMaxOrbs = 64;                 // orbs one config names
inline constexpr size_t kMaxOrbBytes = 4 << 20;        // their packed YAML, together
inline constexpr size_t kMaxWorkflowJobs = 1000;       // a workflow's jobs, matrix expanded

struct ParseOutcome {
  std::optional<Job> job;    // set only when diagnostics has no errors
  Diagnostics diagnostics;   // all errors found, rendered by the caller
  std::vector<std::string> available_jobs;  // the file's jobs (and the names its workflows give them)
  std::optional<WorkflowPlan> plan;          // with ProcessInput::workflow and no job_name
  std::vector<std::string> needed_orbs;      // "ns/name@version" named in `orbs:` and not in ProcessInput::orbs
  bool choice_error = false;                 // the error is which job: show available_jobs with it
};

// Parses FILE: a CircleCI config.yml (`version: 2` or `2.1`, a `jobs:` map;
// `job_name` picks one, or the only job is taken) or a file holding one job
// (`steps:` at its top). Refusals of features this runner does not have
// (a `docker:` executor, `save_cache` and friends, orbs) are errors with a
// named reason at the offending line.
ParseOutcome parse_job_file(const std::string& path, const std::optional<std::string>& job_name);

ParseOutcome parse_job_file(const std::string& path, const ProcessInput& in);

// Same, from text already in memory (used by the parse child, tests and the fuzzer).
ParseOutcome parse_job_text(const std::string& display_path, const std::string& text,
                            const std::optional<std::string>& job_name);
ParseOutcome parse_job_text(const std::string& display_path, const std::string& text, const ProcessInput& in);

}  // namespace gh::job
