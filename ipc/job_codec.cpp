// The job's typed encoding (job_codec.hpp) and the checks the decoder runs.
#include "ipc/job_codec.hpp"

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
  if (has_nul(j.shell) || has_nul(j.resource_class)) return "the job's shell or resource class holds a NUL byte";
  if (auto why = env_problem(j.environment); !why.empty()) return "the job's " + why;
  if (auto why = directory_problem(j.working_directory, false); !why.empty()) return "the job's working directory " + why;
  if (j.steps.empty()) return "the job has no steps";
  for (size_t i = 0; i < j.steps.size(); ++i)
    if (auto why = step_problem(j.steps[i]); !why.empty()) return "step " + std::to_string(i + 1) + ": " + why;
  return {};
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
  c.list(v.steps, job::kMaxSteps, [&](job::Step& s) { fields(c, s); });
  check(c, [&] { return job_problem(v); });
}

#define GH_BOTH(T)                    \
  template void fields(Encoder&, T&); \
  template void fields(Decoder&, T&);
GH_BOTH(job::RunStep)
GH_BOTH(job::CheckoutStep)
GH_BOTH(job::Step)
GH_BOTH(job::Job)
#undef GH_BOTH

}  // namespace gh::ipc
