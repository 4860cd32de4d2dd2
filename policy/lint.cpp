// `policy check` warnings: grants the parser accepts (they are legal, and
// sometimes needed) but that a reviewer must see spelled out, each at the
// profile, rule or secret that makes it.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "policy/machine.hpp"
#include "policy/policy.hpp"
#include "policy/seccomp_names.hpp"
#include "policy/tools_text.hpp"

namespace gh::policy {

namespace {

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string prof(const Profile& p) { return "profile `" + p.name + "`"; }

// An egress entry whose host part covers every address: as good as
// `network: host` for exfiltration, minus the host's loopback.
bool allows_everything(const std::string& entry) {
  const size_t colon = entry.rfind(':');
  const std::string host = entry.substr(0, colon == std::string::npos ? entry.size() : colon);
  return host == "*" || host == "0.0.0.0/0" || host == "[::]/0" || host == "[::/0]" || host == "[0::0]/0";
}

void lint_profile(const Profile& p, Diagnostics& d) {
  if (p.docker.mode == DockerMode::Direct)
    d.warning(p.mark, prof(p) + ": docker: direct gives every job root on the host (the Docker socket)",
              "docker: deny, or docker: proxy with image and bind rules; keep direct for trusted jobs only");
  if (p.docker.mode == DockerMode::Proxy && p.docker.proxy.buildkit)
    d.warning(p.mark, prof(p) + ": docker.proxy.buildkit: true lets builds fetch their Dockerfile over BuildKit's "
                                "session, so the proxy cannot check their base images",
              "buildkit: false (the classic builder, whose Dockerfile the proxy reads), unless these jobs are trusted");
  // At the `network:` key, which is what to change; the profile when it is not written.
  const Mark net = p.network.mark.line > 0 ? p.network.mark : p.mark;
  if (p.network.mode == NetworkMode::Host)
    d.warning(net, prof(p) + ": network: host gives jobs the host's network, its loopback services included",
              "network: none, or network: {mode: egress, allow: [host:port, ...]}");
  if (p.network.mode == NetworkMode::Egress)
    for (const auto& a : p.network.allow)
      if (allows_everything(a))
        d.warning(net, prof(p) + ": network.allow entry `" + text::shown(a) + "` reaches every address",
                  "name the hosts and ports jobs need");
  for (const auto& path : p.filesystem.read_write)
    d.warning(p.mark, prof(p) + ": filesystem.read_write `" + text::shown(path) +
                          "`: jobs can change this host path, and every later job sees the change",
              "read_only, or a cache the job restores and saves");
  for (const auto& sc : p.seccomp.allow)
    if (const SyscallNote* why = seccomp_dangerous(sc); why && !contains(p.seccomp.deny, sc))
      d.warning(p.mark, prof(p) + ": seccomp.allow `" + text::shown(sc) + "`: " + std::string(why->why),
                "leave it out unless a job needs it (e.g. a debugger for ptrace)");
  if (p.resources.memory_bytes == 0)
    d.warning(p.mark, prof(p) + ": resources.memory: unlimited lets one job exhaust the host's memory",
              "a size such as 8G");
  if (p.user.root_in_namespace && p.network.mode == NetworkMode::Host)
    d.warning(net, prof(p) + ": root_in_namespace with network: host: root in the job's namespace may "
                                "configure the host's network namespace it shares",
              "network: none or egress with root_in_namespace");
}

// Machine patterns that cannot mean what they seem: a Windows or macOS name
// (every Linux host refuses it whatever the list says) and a GPU one (the
// sandbox gives jobs no GPU device). Not errors: a policy may be shared by
// hosts and kept for later.
void lint_machine(const Profile& p, Diagnostics& d) {
  auto one = [&](const std::string& entry, const char* key, const MachinePlatform& pf, Mark list_mark) {
    const Mark at = list_mark.line > 0 ? list_mark : p.mark;
    const std::string what = prof(p) + ": machine." + key + " `" + text::shown(entry) + "`";
    if (pf.os == MachineOs::Windows || pf.os == MachineOs::MacOs)
      d.warning(at, what + " names " + os_name(pf.os) + " machines: this Linux runner refuses such jobs whatever the "
                                                        "policy lists",
                "leave it out; such jobs need a " + std::string(os_name(pf.os)) + " runner");
    else if (entry.rfind("gpu.", 0) == 0 || entry.rfind("linux-cuda-", 0) == 0)
      d.warning(at, what + " names GPU machines, and the sandbox gives jobs no GPU device",
                "leave it out: jobs that need a GPU would fail here");
  };
  for (const auto& e : p.machine.images) one(e, "images", image_platform(e), p.machine.images_mark);
  for (const auto& e : p.machine.resource_classes)
    one(e, "resource_classes", resource_class_platform(e), p.machine.resource_classes_mark);
}

// Rules that fork pull requests can reach, in order, until one catches every
// fork PR: a rule with no match, or one whose only condition is a trigger
// list holding fork_pull_request.
void lint_fork_secrets(const Policy& p, Diagnostics& d) {
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    const auto& m = r.match;
    const bool reaches = m.trigger.empty() || contains(m.trigger, "fork_pull_request");
    if (!reaches) continue;
    for (const auto& prof_ : p.profiles) {
      if (prof_.name != r.profile || prof_.secrets.empty()) continue;
      std::string names;
      for (const auto& s : prof_.secrets) names += (names.empty() ? "`" : ", `") + s.name + "`";
      const Mark at = r.mark.line > 0 ? r.mark : prof_.secrets.front().mark;
      d.warning(at,
                "rule " + std::to_string(i + 1) + " can select profile `" + prof_.name +
                    "` for fork pull requests, which exposes " + (prof_.secrets.size() == 1 ? "secret " : "secrets ") +
                    names + " to code from outside",
                "a profile without secrets for fork pull requests, chosen by an earlier rule "
                "`- match: {trigger: fork_pull_request}`");
    }
    const bool catches_all = m.empty() || (m.project.empty() && m.branch.empty() && m.tag.empty() &&
                                           m.job.empty() && m.signed_by.empty());
    if (catches_all) return;
  }
}

void lint_unused(const Policy& p, Diagnostics& d) {
  for (const auto& prof_ : p.profiles) {
    const bool selected = std::any_of(p.rules.begin(), p.rules.end(),
                                      [&](const Rule& r) { return r.profile == prof_.name; });
    // A profile other profiles extend is used as a base, not dead weight.
    const bool base = std::any_of(p.profiles.begin(), p.profiles.end(),
                                  [&](const Profile& o) { return o.extends == prof_.name; });
    if (!selected && !base)
      d.warning(prof_.mark, prof(prof_) + " is unused: no rule selects it and no profile extends it",
                "a rule that selects it, or remove it");
  }
}

// Legal (an operator may lock the agent down on purpose), but every job
// from the control plane would be refused.
void lint_signatures(const Policy& p, Diagnostics& d) {
  const auto& sg = p.signatures;
  if (sg.required && sg.trusted_keys.empty())
    d.warning(sg.mark, "signatures.required is true but no key is trusted: every job from the control plane is refused",
              "trusted_keys: [{name: NAME, ed25519: BASE64}] (`gatehouse sign --generate-key` makes a key)");
}

}  // namespace

void lint(const Policy& p, Diagnostics& d) {
  lint_signatures(p, d);
  for (const auto& prof_ : p.profiles) {
    lint_profile(prof_, d);
    lint_machine(prof_, d);
  }
  lint_fork_secrets(p, d);
  lint_unused(p, d);
}

}  // namespace gh::policy
