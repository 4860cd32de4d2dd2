// The job's typed encoding (job_codec.hpp) and the checks the decoder runs.
#include "ipc/job_codec.hpp"

#include <algorithm>
#include <set>

#include "ipc/policy_codec.hpp"
#include "policy/values.hpp"

namespace gh::ipc {

namespace {

constexpr uint32_t kWhenCount = 3, kStepKindCount = 2;

std::string env_problem(const job::EnvList& env) {
  for (const auto& [k, v] : env) {
    if (!policy::detail::valid_env_name(k)) return "environment variable name " + shown_value(k) + " is not valid";
    if (has_nul(v)) return "environment variable `" + k + "` holds a NUL byte";
  }
  return {};
}

// job_parse.cpp directory(): `~`, `~/x`, absolute or relative, never
// through `..`. Empty means "the job's" (steps only).
std::string directory_problem(const std::string& d, bool empty_ok) {
  if (d.empty()) return empty_ok ? "" : "is empty";
  if (has_nul(d)) return "holds a NUL byte";
  if (d[0] == '~' && d.size() > 1 && d[1] != '/') return "names another user's home";
  for (size_t i = 0; i <= d.size();) {
    size_t j = d.find('/', i);
    if (j == std::string::npos) j = d.size();
    if (d.compare(i, j - i, "..") == 0) return "goes up through `..`";
    i = j + 1;
  }
  return {};
}

std::string step_problem(const job::Step& s) {
  if (s.kind == job::Step::Kind::Checkout) {
    if (auto why = directory_problem(s.checkout.path, true); !why.empty()) return "the checkout path " + why;
    return {};
  }
  const job::RunStep& r = s.run;
  if (r.command.empty()) return "the command is empty";
  if (has_nul(r.command)) return "the command holds a NUL byte";
  if (r.name.empty() || has_nul(r.name)) return "the name is empty or holds a NUL byte";
  if (has_nul(r.shell)) return "the shell holds a NUL byte";
  if (auto why = env_problem(r.environment); !why.empty()) return why;
  if (auto why = directory_problem(r.working_directory, true); !why.empty()) return "the working directory " + why;
  if (r.no_output_timeout && (r.no_output_timeout->count() < 1 || r.no_output_timeout->count() > 24 * 3600))
    return "no_output_timeout " + std::to_string(r.no_output_timeout->count()) + "s is outside 1s to 24h";
  return {};
}

}  // namespace

std::string job_problem(const job::Job& j) {
  if (j.name.empty() || has_nul(j.name)) return "the job's name is empty or holds a NUL byte";
  if (has_nul(j.source_file)) return "the job's file name holds a NUL byte";
  if (has_nul(j.shell) || has_nul(j.resource_class) || has_nul(j.machine_image))
    return "the job's shell, resource class or machine image holds a NUL byte";
  if (j.parallelism < 1 || j.parallelism > job::kMaxParallelism)
    return "parallelism " + std::to_string(j.parallelism) + " is outside 1 to " + std::to_string(job::kMaxParallelism);
  if (auto why = env_problem(j.environment); !why.empty()) return "the job's " + why;
  if (auto why = directory_problem(j.working_directory, false); !why.empty()) return "the job's working directory " + why;
  if (j.steps.empty()) return "the job has no steps";
  for (size_t i = 0; i < j.steps.size(); ++i)
    if (auto why = step_problem(j.steps[i]); !why.empty()) return "step " + std::to_string(i + 1) + ": " + why;
  return {};
}

// Where a value is in the job file, for the broker's located refusals
// (the machine image and resource class it checks against the policy).
template <class C>
void mark(C& c, Mark& m) {
  file_mark(c, m, job::kMaxJobFileBytes);
}

template <class C>
void fields(C& c, job::RunStep& v) {
  c.str(v.name, kMaxJobScalarBytes);
  c.str(v.command, job::kMaxCommandBytes);
  string_pairs(c, v.environment, job::kMaxEnvEntries, kMaxEnvNameBytes, kMaxJobScalarBytes);
  c.str(v.working_directory, kMaxJobDirectoryBytes);
  c.optional(v.no_output_timeout, [&](std::chrono::seconds& s) {
    int64_t n = s.count();
    c.i64(n);
    if constexpr (C::kDecoding) s = std::chrono::seconds(n);
  });
  c.enumeration(v.when, kWhenCount);
  c.str(v.shell, kMaxJobScalarBytes);
  c.boolean(v.background);
}

template <class C>
void fields(C& c, job::CheckoutStep& v) {
  c.str(v.path, kMaxJobDirectoryBytes);
}

template <class C>
void fields(C& c, job::Step& v) {
  c.enumeration(v.kind, kStepKindCount);
  if (!c.ok()) return;
  if (v.kind == job::Step::Kind::Run) fields(c, v.run);
  else fields(c, v.checkout);
}

template <class C>
void fields(C& c, job::Job& v) {
  c.str(v.name, kMaxDisplayBytes);
  c.str(v.source_file, kMaxDisplayBytes);
  string_pairs(c, v.environment, job::kMaxEnvEntries, kMaxEnvNameBytes, kMaxJobScalarBytes);
  c.str(v.working_directory, kMaxJobDirectoryBytes);
  c.str(v.shell, kMaxJobScalarBytes);
  c.str(v.resource_class, kMaxJobScalarBytes);
  mark(c, v.resource_class_mark);
  c.str(v.machine_image, kMaxJobScalarBytes);
  mark(c, v.machine_image_mark);
  c.u32(v.parallelism);
  c.list(v.steps, job::kMaxSteps, [&](job::Step& s) { fields(c, s); });
  check(c, [&] { return job_problem(v); });
}

template <class C>
void fields(C& c, job::ProcessInput& v) {
  // job_name travels as ParseRequest::job_name.
  c.optional(v.workflow, [&](std::string& s) { c.str(s, kMaxDisplayBytes); });
  string_pairs(c, v.parameters, job::kMaxPipelineParameters, kMaxEnvNameBytes, kMaxJobScalarBytes);
  c.str(v.project, kMaxDisplayBytes);
  c.str(v.branch, kMaxDisplayBytes);
  c.str(v.tag, kMaxDisplayBytes);
  c.str(v.revision, kMaxDisplayBytes);
  c.u64(v.number);
  c.str(v.id, kMaxDisplayBytes);
  string_pairs(c, v.orbs, job::kMaxOrbs, kMaxDisplayBytes, job::kMaxJobFileBytes);
  c.str(v.orb_directory, kMaxDisplayBytes);
  check(c, [&]() -> std::string {
    size_t total = 0;
    for (const auto& [k, o] : v.orbs) total += o.size();
    if (total > job::kMaxOrbBytes) return "the orbs are " + std::to_string(total) + " bytes, more than the limit";
    for (const auto& [k, val] : v.parameters)
      if (k.empty() || has_nul(k) || has_nul(val)) return "a pipeline parameter is unnamed or holds a NUL byte";
    return {};
  });
}

template <class C>
void fields(C& c, job::WorkflowJob& v) {
  c.str(v.name, kMaxDisplayBytes);
  strings(c, v.needs, job::kMaxWorkflowJobs, kMaxDisplayBytes);
  c.u32(v.parallelism);
  c.boolean(v.approval);
}

// Checks: names unique, not empty, no NUL; each `requires` names an earlier
// entry (so running them in order is running them in dependency order).
template <class C>
void fields(C& c, job::WorkflowPlan& v) {
  c.str(v.name, kMaxDisplayBytes);
  c.list(v.jobs, job::kMaxWorkflowJobs, [&](job::WorkflowJob& j) { fields(c, j); });
  strings(c, v.filtered_out, job::kMaxWorkflowJobs, kMaxDisplayBytes);
  check(c, [&]() -> std::string {
    std::set<std::string> seen;
    for (const auto& j : v.jobs) {
      if (j.name.empty() || has_nul(j.name)) return "a workflow job's name is empty or holds a NUL byte";
      if (j.parallelism < 1 || j.parallelism > job::kMaxParallelism) return "workflow job `" + j.name + "` has a bad parallelism";
      if (j.approval && j.parallelism != 1) return "approval `" + j.name + "` has nodes: it runs nothing";
      for (const auto& r : j.needs)
        if (!seen.count(r)) return "workflow job `" + j.name + "` requires `" + r + "`, which does not run before it";
      if (!seen.insert(j.name).second) return "workflow job `" + j.name + "` is listed twice";
    }
    return {};
  });
}

#define GH_BOTH(T)                    \
  template void fields(Encoder&, T&); \
  template void fields(Decoder&, T&);
GH_BOTH(job::RunStep)
GH_BOTH(job::CheckoutStep)
GH_BOTH(job::Step)
GH_BOTH(job::Job)
GH_BOTH(job::ProcessInput)
GH_BOTH(job::WorkflowPlan)
#undef GH_BOTH

}  // namespace gh::ipc
