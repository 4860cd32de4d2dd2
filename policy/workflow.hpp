// Workflows (`workflows:` of a CircleCI 2.1 config), read as CircleCI's
// configuration reference defines them: each workflow's `jobs:` list of
// invocations with `requires`, `name`, `context`, `type: approval`,
// `filters`, `matrix`, `pre-steps`/`post-steps` and parameter arguments.
//
// What this decides, and how CircleCI does it:
//  - matrix expansion: one invocation per combination of the `parameters`
//    lists, less the `exclude`d ones. An expansion is named
//    `<job>-<value>-<value>...` with the values in the order of their
//    parameters' names, sorted (the reference's own example: `version`
//    written before `platform` gives `build-macos-0.1`), unless `name:` says
//    otherwise (with `<< matrix.x >>` substituted). `alias` (default: the
//    job's name) names the whole matrix in another job's `requires`.
//  - the same name given to several invocations: each gets `-1`, `-2`...
//    appended (as CircleCI does), and a `requires` of the bare name is an
//    error naming how many jobs have it.
//  - `filters`: branches and tags, `only` and `ignore`, a string or a list,
//    `/regex/` matching the whole name. A pipeline with a tag runs only jobs
//    whose tag filter says so; one without a tag runs jobs whose branch
//    filter (if any) matches. A requirement that is filtered out is dropped;
//    a job all of whose requirements are filtered out is filtered out too.
//  - `triggers` (schedules) are the control plane's: accepted and ignored
//    with a warning; `gatehouse run --workflow` runs the jobs now.
//  - `when`/`unless` are kept for the caller to evaluate (logic statements).
//  - bounds: at most kMaxWorkflowJobs invocations after expansion (a matrix
//    that expands past it is refused at its line before it is expanded) and
//    kMaxWorkflowEdges `requires` edges in a workflow.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/yaml_util.hpp"
#include "policy/job.hpp"

namespace gh::job::workflow {

inline constexpr size_t kMaxNameBytes = 255;       // a workflow's or an invocation's name
inline constexpr size_t kMaxWorkflowEdges = 20000;  // `requires` entries, after matrix expansion

struct Invocation {
  std::string name;  // unique in its workflow
  std::string job;   // the key under `jobs:` (or `orb/job`; an approval's own name)
  // Parameter arguments in file order, then the matrix's values (sorted by
  // parameter), with `<< matrix.x >>` substituted. Nodes may be shared
  // between expansions: read-only.
  std::vector<yaml::Entry> arguments;
  std::vector<std::string> needs;  // names of earlier invocations; filtered-out ones dropped
  Mark mark;                       // the invocation's job name in the list
  bool approval = false;           // `type: approval`: a hold, no job runs
  bool filtered_out = false;       // its filters (or all its requirements') say no
  YAML::Node pre_steps, post_steps;  // as written (matrix values substituted); null when absent
};

struct Workflow {
  std::string name;
  Mark mark;
  std::vector<Invocation> jobs;  // dependency order (file order among independent ones)
  std::optional<yaml::Entry> when, unless;
};

// The workflows' names in file order (`version:`, CircleCI 2.0's, is not one).
std::vector<std::string> names(const YAML::Node& workflows, Diagnostics& d);

// The workflow `name`, expanded, checked and ordered; nullopt (errors in d)
// when it has errors or does not exist. `in` gives the branch and tag the
// filters match.
std::optional<Workflow> read(const YAML::Node& workflows, const std::string& name, const ProcessInput& in,
                             Diagnostics& d);

// The invocation called `name` in `in.workflow`, or else in the first
// workflow of the file that has one (for `--job test-3.11`); nullopt
// without an error when no workflow has it, with errors when a workflow
// read on the way has them.
std::optional<std::pair<Workflow, size_t>> find_invocation(const YAML::Node& workflows, const std::string& name,
                                                           const ProcessInput& in, Diagnostics& d);

}  // namespace gh::job::workflow

namespace gh::job {

// `gatehouse run FILE --workflow W` without --job: the workflow `in.workflow`
// of the config in `text` as a plan (ParseOutcome::plan): its jobs in
// dependency order with their `needs`, each job's node count (its literal
// `parallelism:`, else 1), approvals, and the names its filters left out.
ParseOutcome plan_workflow_text(const std::string& display, const std::string& text, const ProcessInput& in);

}  // namespace gh::job
