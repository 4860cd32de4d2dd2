// `policy explain`: what a job may do, in plain words, for a reviewer who
// has not read the syntax reference. Every field is spelled out, defaults
// included ("Network: none — only its own loopback"): a grant nobody wrote
// is still a grant, and silence would hide it. The output is a pure
// function of the policy (golden-tested), so it can be diffed in review.
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "policy/tools_text.hpp"

namespace gh::policy {

namespace {

using text::bytes;
using text::shown;
using text::shown_list;

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string runs_as(const Profile& p) {
  const auto& u = p.user;
  std::string s = "  Runs as: ";
  if (u.root_in_namespace)
    s += "root (uid 0, gid 0) inside the job's own user namespace, with capabilities over that namespace only";
  else
    s += "user " + shown(u.name) + " (uid " + std::to_string(u.uid) + ", gid " + std::to_string(u.gid) +
         ") inside the job's own user namespace, no capabilities";
  s += "\n    home " + shown(u.home) + "; on the host, one unprivileged uid from " +
       std::to_string(p.uid_pool.first) + "-" +
       std::to_string(static_cast<uint64_t>(p.uid_pool.first) + p.uid_pool.count - 1) + " (a pool of " +
       plural(p.uid_pool.count, "uid", "uids") + ")\n";
  return s;
}

std::string files(const Profile& p) {
  const auto& fs = p.filesystem;
  std::string s = "  Files: ";
  if (fs.root == RootFs::Overlay)
    s += "root: overlay — the host's system as a read-only lower layer; writes go to a private tmpfs of up to " +
         bytes(fs.overlay_bytes) + " and vanish with the job\n";
  else
    s += "root: host — the host's system directories (/usr, /bin, /lib...) read-only\n";
  s += "    /tmp: a private tmpfs of up to " + bytes(fs.tmp_bytes) + "; home: a private tmpfs of up to " +
       bytes(fs.home_bytes) + "\n";
  s += "    extra host paths read-only: " + shown_list(fs.read_only) + "\n";
  s += "    host paths read-write: " + shown_list(fs.read_write);
  if (!fs.read_write.empty()) s += " (changes stay on the host for later jobs)";
  s += "\n    hidden (an empty read-only mount instead): " + shown_list(fs.hidden) + "\n";
  return s;
}

std::string network(const Profile& p) {
  switch (p.network.mode) {
    case NetworkMode::None: return "  Network: none — only its own loopback\n";
    case NetworkMode::Egress:
      return "  Network: egress — only to " + shown_list(p.network.allow) +
             " (not enforced by this build: jobs with this profile are refused)\n";
    case NetworkMode::Host:
      return "  Network: host — the host's own network, its loopback services included\n";
  }
  return {};
}

std::string docker(const Profile& p, const std::string& limits_note) {
  const auto& dk = p.docker;
  switch (dk.mode) {
    case DockerMode::Deny: return "  Docker: deny — no Docker socket of any kind\n";
    case DockerMode::Direct:
      return "  Docker: direct — the host's Docker socket " + shown(dk.socket) +
             ": root on the host (acknowledged: root-equivalent)\n";
    case DockerMode::Proxy: {
      const auto& px = dk.proxy;
      std::string s = "  Docker: proxy — a filtering proxy in front of " + shown(dk.socket) +
                      " (not in this build: jobs with this profile are refused)\n";
      s += "    images: " + shown_list(px.images) + "; push to: " + shown_list(px.push) + "\n";
      s += "    bind paths: " + shown_list(px.bind_paths, "the working directory only") +
           "; published ports: " + shown_list(px.ports) + "; BuildKit: " + (px.buildkit ? "yes" : "no") + "\n";
      s += "    per container: memory " +
           (px.memory_bytes ? bytes(*px.memory_bytes) : "the profile's (" + limits_note + ")") + ", pids " +
           (px.pids ? std::to_string(*px.pids) : "the profile's (" + std::to_string(p.resources.pids) + ")") +
           "\n";
      return s;
    }
  }
  return {};
}

std::string secrets(const Profile& p, const Policy& pol) {
  if (p.secrets.empty()) return "  Secrets: none\n";
  std::string s = "  Secrets (from " + shown(pol.secrets_dir) + "):\n";
  for (const auto& sec : p.secrets) {
    s += "    " + shown(sec.name) + " as ";
    s += sec.as == SecretExposure::As::Env ? "environment variable " + shown(sec.target)
                                           : "file /run/secrets/" + shown(sec.target) + " (readable by the job's uid only)";
    s += "\n";
  }
  return s;
}

std::string environment(const Profile& p) {
  const auto& env = p.environment;
  std::string s = "  Environment: the job's own variables, and\n    set (win over the job's): ";
  if (env.set.empty()) s += "none";
  for (size_t i = 0; i < env.set.size(); ++i)
    s += (i ? ", " : "") + shown(env.set[i].first) + "=" + text::quote(env.set[i].second);
  s += "\n    passed from the broker's environment: " + shown_list(env.pass) + "\n";
  s += "    removed whoever set them: " + shown_list(env.deny) + "\n";
  return s;
}

std::string syscalls(const Profile& p) {
  const auto& sc = p.seccomp;
  if (sc.allow.empty() && sc.deny.empty()) return "  System calls: the built-in seccomp allowlist, unchanged\n";
  return "  System calls: the built-in seccomp allowlist\n    plus: " + shown_list(sc.allow) +
         "\n    minus: " + shown_list(sc.deny) + "\n";
}

// The lists, and the check on top that no list can lift: a reviewer must
// not read `arm.*` as "arm jobs run on this x86 host".
std::string machine(const Profile& p) {
  const auto& m = p.machine;
  std::string s = "  Machine images a job may name: " + shown_list(m.images) +
                  "\n    the job runs on this host's own Linux whatever image it names; one that names none is not checked\n";
  s += "  Resource classes a job may name: " + shown_list(m.resource_classes) +
       "\n    a job that names none is not checked; a self-hosted runner class (namespace/name) is this host\n";
  s += "    on every host, whatever these lists say: a Windows or macOS image or class is refused, and so is a class "
       "of another\n    architecture than the host's (arm.* is aarch64; the plain sizes, gpu.nvidia.* and the Android "
       "image are x86_64)\n";
  return s;
}

std::string memory(const Profile& p) {
  return p.resources.memory_bytes == 0 ? "unlimited (no cgroup memory limit)" : bytes(p.resources.memory_bytes);
}

std::string limits(const Profile& p) {
  const auto& r = p.resources;
  return "  Limits: memory " + memory(p) + ", " + plural(r.pids, "process", "processes") + ", " +
         text::number(r.cpus) + (r.cpus == 1.0 ? " CPU" : " CPUs") + ", " + std::to_string(r.open_files) +
         " open files, files up to " + bytes(r.file_size_bytes) + "\n    the job runs at most " +
         text::duration(r.max_run_time_s) + "; a step is stopped after " + text::duration(r.no_output_timeout_s) +
         " without output\n";
}

// Spelled out even when the file has no `signatures:`: "unsigned jobs are
// admitted" is a decision a reviewer should see.
std::string signatures(const Policy& p) {
  const auto& sg = p.signatures;
  std::string s = "Signatures (Ed25519, checked before a job from the control plane runs):\n";
  s += sg.required ? "  required: true — unsigned jobs are refused\n"
                   : "  required: false (the default) — unsigned jobs are admitted; they match no `signed_by` rule\n";
  s += "  a job that carries a signature is refused unless it verifies against a trusted key\n";
  if (sg.trusted_keys.empty()) {
    s += "  trusted keys: none (the default) — every signed job is refused";
    s += sg.required ? ", and so is every unsigned one: no job can run\n" : "\n";
    return s;
  }
  s += "  trusted keys (the names `signed_by` rules match):\n";
  for (const auto& k : sg.trusted_keys) {
    s += "    " + k.name + ": ed25519 " + public_key_base64(k);
    s += (k.mark.line > 0 ? " (line " + std::to_string(k.mark.line) + ")" : std::string()) + "\n";
  }
  return s;
}

std::string where(const Mark& m) { return m.line > 0 ? "line " + std::to_string(m.line) : "built in"; }

std::string rules(const Policy& p) {
  std::string s = "Rules (the first that matches a job picks its profile):\n";
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    s += "  Rule " + std::to_string(i + 1) + " (" +
         (p.rules_written ? where(r.mark) : std::string("implicit: the file has no `rules:`")) +
         "): " + text::rule_condition(r.match, i == 0) + " run with profile `" + r.profile + "`\n";
  }
  return s;
}

}  // namespace

std::string explain_profile(const Profile& prof, const Policy& p) {
  std::string s = "Profile `" + prof.name + "` (" + where(prof.mark);
  if (!prof.extends.empty()) s += ", extends `" + prof.extends + "`";
  s += "):\n";
  s += runs_as(prof);
  s += files(prof);
  s += network(prof);
  s += docker(prof, memory(prof));
  s += secrets(prof, p);
  s += environment(prof);
  s += syscalls(prof);
  s += limits(prof);
  s += machine(prof);
  return s;
}

std::string explain(const Policy& p, const std::string* only_profile) {
  if (only_profile) {
    for (const auto& prof : p.profiles)
      if (prof.name == *only_profile) return explain_profile(prof, p);
    return "No profile `" + *only_profile + "` in this policy.\n";
  }
  std::string s = "Policy version " + std::to_string(p.version) + ": " +
                  plural(p.profiles.size(), "profile", "profiles") + ", " +
                  plural(p.rules.size(), "rule", "rules") + "\n";
  s += "Secrets are read from " + shown(p.secrets_dir) + "; the audit log is " + shown(p.audit.log) + "\n\n";
  s += signatures(p) + "\n";
  s += rules(p);
  for (const auto& prof : p.profiles) s += "\n" + explain_profile(prof, p);
  return s;
}

}  // namespace gh::policy
