#include "broker/admission.hpp"

#include <sys/random.h>

#include <cstdio>

#include "common/exit_status.hpp"
#include "policy/machine.hpp"
#include "policy/profile.hpp"

namespace gh::broker {

std::string unenforceable(const policy::Profile& p) {
  std::vector<std::string> why;
  if (p.network.mode == policy::NetworkMode::Egress)
    why.push_back("network `egress` (an allowlist of hosts) is parsed and validated, but this build cannot enforce it yet");
  std::string out;
  for (const auto& w : why) out += (out.empty() ? "" : "; ") + w;
  return out;
}

std::optional<MachineRefusal> machine_refusal(const job::Job& job, const Admission& adm, const std::string& job_text,
                                              const std::string& job_display) {
  Diagnostics d(job_display, job_text);
  const policy::MachineCheck c = policy::check_machine(job, adm.profile, policy::host_arch(), adm.policy_path, d);
  if (c.admitted()) return std::nullopt;
  return MachineRefusal{c.host_mismatch ? kBadInput : kRefused, d.render(), c.reason};
}

std::string new_job_id() {
  unsigned char b[8];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  char hex[17];
  for (size_t i = 0; i < sizeof b; ++i) snprintf(hex + 2 * i, 3, "%02x", b[i]);
  return std::string("run-") + hex;
}

nlohmann::json meta_json(const policy::JobMeta& m) {
  return {{"project", m.project}, {"branch", m.branch},   {"tag", m.tag},
          {"trigger", m.trigger}, {"job", m.job},         {"signed_by", m.signed_by}};
}

nlohmann::json job_record(const std::string& event, const std::string& job_id, const Admission* a) {
  nlohmann::json r = {{"event", event}, {"job_id", job_id}};
  if (a) {
    r["policy"] = a->policy_path.empty() ? "(built-in)" : a->policy_path;
    r["policy_digest"] = a->digest;
    r["profile"] = a->profile.name;
    // 1-based, as `policy explain` numbers rules; null when the operator
    // chose the profile with --profile (then profile_override is true).
    r["rule"] = a->rule ? nlohmann::json(*a->rule + 1) : nlohmann::json(nullptr);
    r["profile_override"] = !a->rule.has_value();
  }
  return r;
}

nlohmann::json sandbox_json(const sandbox::SandboxPlan& plan, const policy::Profile& p, const std::string& cgroup,
                            int landlock_abi) {
  nlohmann::json binds = nlohmann::json::array();
  for (const auto& b : plan.binds)
    binds.push_back(b.host + " -> " + b.target + (b.writable ? " (rw)" : " (ro)"));
  nlohmann::json secrets = nlohmann::json::array();
  for (const auto& s : p.secrets)
    secrets.push_back(s.name + (s.as == policy::SecretExposure::As::Env ? " as env " : " as file /run/secrets/") +
                      s.target);
  return {{"host_uid", plan.host_uid},
          {"job_uid", plan.job_uid},
          {"root_in_namespace", plan.root_in_namespace},
          {"root", plan.overlay_root ? "overlay" : "host"},
          {"network", plan.host_network ? "host" : "none"},
          {"docker", policy::text::name(p.docker.mode)},
          {"binds", binds},
          {"hidden", plan.hidden},
          {"secrets", secrets},
          {"seccomp_allow", p.seccomp.allow},
          {"seccomp_deny", p.seccomp.deny},
          {"landlock_abi", landlock_abi},
          {"cgroup", cgroup},
          {"memory_bytes", p.resources.memory_bytes},
          {"pids", p.resources.pids},
          {"cpus", p.resources.cpus},
          {"max_run_time_s", p.resources.max_run_time_s}};
}

}  // namespace gh::broker
