// Admission: which policy, which rule, which profile, and whether this
// build can enforce what the profile asks for. Also the audit records of
// `gatehouse run` (docs/audit.md lists every event and field).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/job.hpp"
#include "policy/policy.hpp"
#include "sandbox/sandbox.hpp"

namespace gh::broker {

struct Admission {
  policy::Policy policy;
  std::string policy_path;    // "" for the built-in policy
  std::string digest;         // policy_digest(policy)
  std::optional<size_t> rule;  // 0-based; unset when --profile overrode the rules
  policy::Profile profile;
};

// What this build cannot enforce, in words for the operator (exit 3), or
// "" when it can enforce everything the profile grants.
std::string unenforceable(const policy::Profile& p);

// The job's machine image and resource class against this host (uname -m;
// always Linux) and the admitted profile (policy/machine.hpp). Unset when
// the job may run here. Otherwise: the exit status (kBadInput when the job
// asks for another OS or architecture, which no policy can grant, as a
// `windows:` executor is a bad job file; kRefused when only the profile's
// `machine` lists refuse it, as other policy refusals), the rendered
// file:line:col errors against the job's text, and the audit reason.
struct MachineRefusal {
  int exit_code = 0;
  std::string diagnostics;
  std::string reason;
};
std::optional<MachineRefusal> machine_refusal(const job::Job& job, const Admission& adm, const std::string& job_text,
                                              const std::string& job_display);

// A fresh job id: "run-" and 16 hex digits from getrandom.
std::string new_job_id();

nlohmann::json meta_json(const policy::JobMeta& m);
// The base of every record about one job.
nlohmann::json job_record(const std::string& event, const std::string& job_id, const Admission* a);
// What the sandbox is, for the "sandbox" record and the job header.
nlohmann::json sandbox_json(const sandbox::SandboxPlan& plan, const policy::Profile& p, const std::string& cgroup,
                            int landlock_abi);

}  // namespace gh::broker
