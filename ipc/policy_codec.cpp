// The policy's typed encoding (policy_codec.hpp): one `fields` per type,
// then the checks of meaning the decoder runs on what it decoded.
#include "ipc/policy_codec.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "policy/values.hpp"
#include "policy/seccomp_names.hpp"

namespace gh::ipc {

namespace {

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;

// One past the largest value of each enumeration (the decoder refuses the rest).
constexpr uint32_t kRootFsCount = 2, kNetworkModeCount = 3, kDockerModeCount = 3, kSecretAsCount = 2;

template <class C>
void optional_u64(C& c, std::optional<uint64_t>& o) {
  c.optional(o, [&](uint64_t& v) { c.u64(v); });
}

// A line and column of the policy file, for the broker's messages only.
template <class C>
void policy_mark(C& c, Mark& m) {
  file_mark(c, m, policy::kMaxPolicyFileBytes);
}

std::string range_problem(const std::string& what, uint64_t v, uint64_t min, uint64_t max) {
  if (v >= min && v <= max) return {};
  return what + " " + std::to_string(v) + " is outside " + std::to_string(min) + " to " + std::to_string(max);
}

// The first entry of `items` that `problem` finds wrong, as "<what> `<item>` <why>".
template <class F>
std::string each_problem(const std::vector<std::string>& items, const std::string& what, F&& problem) {
  for (const auto& s : items)
    if (std::string why = problem(s); !why.empty()) return what + " entry " + shown_value(s) + " " + why;
  return {};
}

std::string path_or_nul(const std::string& p) {
  if (has_nul(p)) return "holds a NUL byte";
  return policy::detail::path_problem(p);
}

std::string env_name_problem(const std::string& s) {
  return policy::detail::valid_env_name(s) ? "" : "is not a valid environment variable name";
}

std::string syscall_name_problem(const std::string& s, bool allowing) {
  if (s.empty() || s.size() > kMaxSyscallNameBytes) return "is not a system call name";
  for (char ch : s)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return "is not a system call name";
  if (allowing && policy::seccomp_never_allowed(s)) return "can never be allowed by policy";
  return {};
}

std::string user_problem(const policy::JobUser& u) {
  if (u.root_in_namespace) {
    if (u.name != "root" || u.uid != 0 || u.gid != 0) return "user is root_in_namespace but not root, uid 0, gid 0";
  } else {
    if (!policy::detail::valid_user_name(u.name) || u.name == "root") return "user.name " + shown_value(u.name) + " is not allowed";
    // 0 is root_in_namespace's; 65534 is the overflow id (profile_parse.cpp).
    if (auto why = range_problem("user.uid", u.uid, 1, 65533); !why.empty()) return why;
    if (auto why = range_problem("user.gid", u.gid, 1, 65533); !why.empty()) return why;
  }
  if (auto why = path_or_nul(u.home); !why.empty()) return "user.home " + why;
  if (!policy::detail::touches_protected(u.home).empty()) return "user.home " + shown_value(u.home) + " is a protected host path";
  return {};
}

std::string uid_pool_problem(const policy::UidPool& p) {
  // Host uids: never root or a system user, never past the "no uid" value.
  if (p.first < 1000) return "uid_pool.first " + std::to_string(p.first) + " is below 1000 (root and system users)";
  if (p.count < 1 || p.count > 65536) return range_problem("uid_pool.count", p.count, 1, 65536);
  if (uint64_t{p.first} + p.count - 1 > 4294967294u) return "uid_pool runs past uid 4294967294";
  return {};
}

std::string filesystem_problem(const policy::Filesystem& f) {
  if (auto why = range_problem("filesystem.overlay_size", f.overlay_bytes, 16 * MiB, TiB); !why.empty()) return why;
  if (auto why = range_problem("filesystem.tmp_size", f.tmp_bytes, MiB, TiB); !why.empty()) return why;
  if (auto why = range_problem("filesystem.home_size", f.home_bytes, MiB, TiB); !why.empty()) return why;
  if (auto why = each_problem(f.read_only, "filesystem.read_only", path_or_nul); !why.empty()) return why;
  if (auto why = each_problem(f.hidden, "filesystem.hidden", path_or_nul); !why.empty()) return why;
  for (const auto& h : f.hidden)
    if (h == "/") return "filesystem.hidden names /";
  return each_problem(f.read_write, "filesystem.read_write", [](const std::string& p) {
    if (auto why = path_or_nul(p); !why.empty()) return why;
    return policy::detail::touches_protected(p).empty() ? std::string() : std::string("is a protected host path");
  });
}

std::string docker_problem(const policy::Docker& d) {
  if (d.mode == policy::DockerMode::Direct && !d.acknowledged_root_equivalent)
    return "docker mode direct without `acknowledge: root-equivalent`";
  if (auto why = path_or_nul(d.socket); !why.empty()) return "docker.socket " + why;
  const auto& px = d.proxy;
  auto glob = [](const std::string& s) { return has_nul(s) ? "holds a NUL byte" : policy::detail::glob_problem(s); };
  if (auto why = each_problem(px.images, "docker.proxy.images", glob); !why.empty()) return why;
  if (auto why = each_problem(px.push, "docker.proxy.push", glob); !why.empty()) return why;
  if (auto why = each_problem(px.bind_paths, "docker.proxy.bind_paths", path_or_nul); !why.empty()) return why;
  if (auto why = each_problem(px.ports, "docker.proxy.ports",
                              [](const std::string& s) { return policy::detail::port_problem(s, false); });
      !why.empty())
    return why;
  if (px.memory_bytes)
    if (auto why = range_problem("docker.proxy.memory", *px.memory_bytes, 32 * MiB, 16 * TiB); !why.empty()) return why;
  if (px.pids)
    if (auto why = range_problem("docker.proxy.pids", *px.pids, 16, 4194304); !why.empty()) return why;
  return {};
}

std::string resources_problem(const policy::Resources& r) {
  // The ranges of profile_parse.cpp parse_resources; memory 0 is "unlimited".
  if (r.memory_bytes != 0)
    if (auto why = range_problem("resources.memory", r.memory_bytes, 32 * MiB, 16 * TiB); !why.empty()) return why;
  if (auto why = range_problem("resources.pids", r.pids, 16, 4194304); !why.empty()) return why;
  if (!std::isfinite(r.cpus) || r.cpus < 0.01 || r.cpus > 1024.0) return "resources.cpus is outside 0.01 to 1024";
  if (auto why = range_problem("resources.max_run_time", r.max_run_time_s, 1, 7 * 86400); !why.empty()) return why;
  if (auto why = range_problem("resources.no_output_timeout", r.no_output_timeout_s, 1, 86400); !why.empty()) return why;
  if (auto why = range_problem("resources.open_files", r.open_files, 64, 1048576); !why.empty()) return why;
  return range_problem("resources.file_size", r.file_size_bytes, MiB, 64 * TiB);
}

std::string environment_problem(const policy::Environment& e) {
  for (const auto& [k, v] : e.set) {
    if (!policy::detail::valid_env_name(k)) return "environment.set name " + shown_value(k) + " is not valid";
    if (has_nul(v)) return "environment.set value of `" + k + "` holds a NUL byte";
  }
  if (auto why = each_problem(e.pass, "environment.pass", [](const std::string& s) {
        if (auto w = env_name_problem(s); !w.empty()) return w;
        return s.rfind("GATEHOUSE_", 0) == 0 ? std::string("would hand the agent's settings to jobs") : std::string();
      });
      !why.empty())
    return why;
  return each_problem(e.deny, "environment.deny", env_name_problem);
}

std::string secrets_problem(const std::vector<policy::SecretExposure>& secrets) {
  // The name becomes a file name under secrets_dir, read by root: never a path.
  for (const auto& s : secrets) {
    if (!policy::detail::valid_secret_name(s.name)) return "secret name " + shown_value(s.name) + " is not a plain file name";
    if (s.as == policy::SecretExposure::As::Env) {
      if (!policy::detail::valid_env_name(s.target) || s.target.rfind("GATEHOUSE_", 0) == 0)
        return "secret `" + s.name + "` has the variable name " + shown_value(s.target) + ", which is not allowed";
    } else if (!policy::detail::valid_secret_name(s.target)) {
      return "secret `" + s.name + "` has the file name " + shown_value(s.target) + ", which is not a plain file name";
    }
  }
  return {};
}

std::string machine_problem(const policy::Machine& m) {
  auto pattern = [](const std::string& s) {
    return has_nul(s) ? std::string("holds a NUL byte") : policy::detail::machine_pattern_problem(s);
  };
  if (auto why = each_problem(m.images, "machine.images", pattern); !why.empty()) return why;
  return each_problem(m.resource_classes, "machine.resource_classes", pattern);
}

std::string rule_match_problem(const policy::RuleMatch& m, const std::set<std::string>& key_names) {
  const std::vector<std::string>* patterns[] = {&m.project, &m.branch, &m.tag, &m.job};
  for (const auto* list : patterns)
    for (const auto& p : *list)
      if (p.empty() || p.size() > kMaxGlobBytes || has_nul(p)) return "a pattern is empty, too long or holds a NUL byte";
  for (const auto& t : m.trigger) {
    bool known = false;
    for (const char* k : policy::kTriggers) known = known || t == k;
    if (!known) return "trigger " + shown_value(t) + " is not known";
  }
  for (const auto& s : m.signed_by)
    if (!key_names.count(s)) return "signed_by " + shown_value(s) + " names no trusted key";
  return {};
}

std::string policy_level_problem(const policy::Policy& p) {
  if (p.version != 1) return "policy version " + std::to_string(p.version) + " is not 1";
  if (auto why = path_or_nul(p.secrets_dir); !why.empty()) return "secrets_dir " + why;
  if (auto why = path_or_nul(p.audit.log); !why.empty()) return "audit.log " + why;
  std::set<std::string> key_names;
  std::set<std::array<unsigned char, 32>> keys;
  for (const auto& k : p.signatures.trusted_keys) {
    if (!policy::valid_key_name(k.name)) return "trusted key name " + shown_value(k.name) + " is not valid";
    if (!key_names.insert(k.name).second) return "trusted key `" + k.name + "` is listed twice";
    if (!keys.insert(k.public_key).second) return "trusted key `" + k.name + "` repeats another key";
    if (policy::small_order_public_key(k.public_key)) return "trusted key `" + k.name + "` is a point of small order";
  }
  if (p.profiles.empty()) return "the policy has no profile";
  std::set<std::string> names;
  for (const auto& prof : p.profiles)
    if (!names.insert(prof.name).second) return "profile `" + prof.name + "` is defined twice";
  for (const auto& prof : p.profiles)
    if (!prof.extends.empty() && !names.count(prof.extends))
      return "profile `" + prof.name + "` extends `" + prof.extends + "`, which is not in the policy";
  // select_profile relies on this: every job gets a rule, and every rule a profile.
  if (p.rules.empty()) return "the policy has no rule";
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const auto& r = p.rules[i];
    const std::string which = "rule " + std::to_string(i + 1);
    if (!names.count(r.profile)) return which + " names " + shown_value(r.profile) + ", which is not a profile of the policy";
    if (r.match.empty() != (i + 1 == p.rules.size()))
      return which + (r.match.empty() ? " has no match but is not the last" : " is the last but has a match");
    if (auto why = rule_match_problem(r.match, key_names); !why.empty()) return which + ": " + why;
  }
  return {};
}

}  // namespace

// The parse child's answer is hostile: a value it sent is shown in an error
// as printable ASCII only (this runs in the broker, which links no YAML
// code and so not yaml::printable).
std::string shown_value(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return "`" + out + (s.size() > 80 ? "...`" : "`");
}

std::string profile_problem(const policy::Profile& p) {
  if (!policy::detail::valid_profile_name(p.name)) return "profile name " + shown_value(p.name) + " is not valid";
  if (!p.extends.empty() && !policy::detail::valid_profile_name(p.extends))
    return "profile `" + p.name + "` extends a name that is not valid";
  std::string why = user_problem(p.user);
  if (why.empty()) why = uid_pool_problem(p.uid_pool);
  if (why.empty()) why = filesystem_problem(p.filesystem);
  if (why.empty()) why = each_problem(p.network.allow, "network.allow", [](const std::string& s) {
    return has_nul(s) ? std::string("holds a NUL byte") : policy::detail::host_port_problem(s);
  });
  if (why.empty()) why = docker_problem(p.docker);
  if (why.empty()) why = resources_problem(p.resources);
  if (why.empty()) why = each_problem(p.seccomp.allow, "seccomp.allow", [](const std::string& s) {
    return syscall_name_problem(s, true);
  });
  if (why.empty()) why = each_problem(p.seccomp.deny, "seccomp.deny", [](const std::string& s) {
    return syscall_name_problem(s, false);
  });
  if (why.empty()) why = environment_problem(p.environment);
  if (why.empty()) why = secrets_problem(p.secrets);
  if (why.empty()) why = machine_problem(p.machine);
  return why.empty() ? why : "profile `" + p.name + "`: " + why;
}

std::string policy_problem(const policy::Policy& p) {
  for (const auto& prof : p.profiles)
    if (auto why = profile_problem(prof); !why.empty()) return why;
  return policy_level_problem(p);
}

template <class C>
void fields(C& c, policy::JobUser& v) {
  c.str(v.name, kMaxUserNameBytes);
  c.u32(v.uid);
  c.u32(v.gid);
  c.str(v.home, kMaxPolicyPathBytes);
  c.boolean(v.root_in_namespace);
}

template <class C>
void fields(C& c, policy::UidPool& v) {
  c.u32(v.first);
  c.u32(v.count);
}

template <class C>
void fields(C& c, policy::Filesystem& v) {
  c.enumeration(v.root, kRootFsCount);
  c.u64(v.overlay_bytes);
  strings(c, v.read_only, policy::kMaxProfilePaths, kMaxPolicyPathBytes);
  strings(c, v.read_write, policy::kMaxProfilePaths, kMaxPolicyPathBytes);
  strings(c, v.hidden, policy::kMaxProfilePaths, kMaxPolicyPathBytes);
  c.u64(v.tmp_bytes);
  c.u64(v.home_bytes);
}

template <class C>
void fields(C& c, policy::Network& v) {
  c.enumeration(v.mode, kNetworkModeCount);
  strings(c, v.allow, policy::kMaxHostPatterns, kMaxHostPortBytes);
}

template <class C>
void fields(C& c, policy::DockerProxyRules& v) {
  strings(c, v.images, policy::kMaxHostPatterns, kMaxGlobBytes);
  strings(c, v.push, policy::kMaxHostPatterns, kMaxGlobBytes);
  strings(c, v.bind_paths, policy::kMaxProfilePaths, kMaxPolicyPathBytes);
  strings(c, v.ports, policy::kMaxHostPatterns, kMaxPortRangeBytes);
  c.boolean(v.buildkit);
  optional_u64(c, v.memory_bytes);
  optional_u64(c, v.pids);
}

template <class C>
void fields(C& c, policy::Docker& v) {
  c.enumeration(v.mode, kDockerModeCount);
  c.boolean(v.acknowledged_root_equivalent);
  c.str(v.socket, kMaxPolicyPathBytes);
  fields(c, v.proxy);
}

template <class C>
void fields(C& c, policy::Resources& v) {
  c.u64(v.memory_bytes);
  c.u64(v.pids);
  c.f64(v.cpus);
  c.u64(v.max_run_time_s);
  c.u64(v.no_output_timeout_s);
  c.u64(v.open_files);
  c.u64(v.file_size_bytes);
}

template <class C>
void fields(C& c, policy::SeccompChanges& v) {
  strings(c, v.allow, policy::kMaxSyscallNames, kMaxSyscallNameBytes);
  strings(c, v.deny, policy::kMaxSyscallNames, kMaxSyscallNameBytes);
}

template <class C>
void fields(C& c, policy::Environment& v) {
  string_pairs(c, v.set, policy::kMaxProfileEnv, kMaxEnvNameBytes, kMaxPolicyValueBytes);
  strings(c, v.pass, policy::kMaxProfileEnv, kMaxEnvNameBytes);
  strings(c, v.deny, policy::kMaxProfileEnv, kMaxEnvNameBytes);
}

template <class C>
void fields(C& c, policy::SecretExposure& v) {
  c.str(v.name, kMaxPolicyNameBytes);
  c.enumeration(v.as, kSecretAsCount);
  c.str(v.target, kMaxEnvNameBytes);  // a variable name (256) or a file name (64)
}

template <class C>
void fields(C& c, policy::Machine& v) {
  strings(c, v.images, policy::kMaxMachinePatterns, kMaxMachinePatternBytes);
  strings(c, v.resource_classes, policy::kMaxMachinePatterns, kMaxMachinePatternBytes);
  policy_mark(c, v.images_mark);
  policy_mark(c, v.resource_classes_mark);
}

template <class C>
void fields(C& c, policy::Profile& v) {
  c.str(v.name, kMaxPolicyNameBytes);
  c.str(v.extends, kMaxPolicyNameBytes);
  policy_mark(c, v.mark);
  fields(c, v.user);
  fields(c, v.uid_pool);
  fields(c, v.filesystem);
  fields(c, v.network);
  fields(c, v.docker);
  fields(c, v.resources);
  fields(c, v.seccomp);
  fields(c, v.environment);
  c.list(v.secrets, policy::kMaxSecrets, [&](policy::SecretExposure& s) { fields(c, s); });
  fields(c, v.machine);
  check(c, [&] { return profile_problem(v); });
}

template <class C>
void fields(C& c, policy::RuleMatch& v) {
  for (auto* list : {&v.project, &v.branch, &v.tag, &v.trigger, &v.job, &v.signed_by})
    strings(c, *list, policy::kMaxRulePatterns, kMaxGlobBytes);
}

template <class C>
void fields(C& c, policy::Rule& v) {
  fields(c, v.match);
  c.str(v.profile, kMaxPolicyNameBytes);
}

template <class C>
void fields(C& c, policy::AuditSettings& v) {
  c.str(v.log, kMaxPolicyPathBytes);
}

template <class C>
void fields(C& c, policy::TrustedKey& v) {
  c.str(v.name, kMaxPolicyNameBytes);
  std::string raw;
  if constexpr (!C::kDecoding) raw.assign(v.public_key.begin(), v.public_key.end());
  c.str(raw, v.public_key.size());
  if constexpr (C::kDecoding) {
    c.require(raw.size() == v.public_key.size(), "a trusted key of " + std::to_string(raw.size()) +
                                                     " bytes where an Ed25519 public key has 32");
    if (c.ok()) std::copy(raw.begin(), raw.end(), v.public_key.begin());
  }
}

template <class C>
void fields(C& c, policy::Signatures& v) {
  c.boolean(v.required);
  c.list(v.trusted_keys, policy::kMaxTrustedKeys, [&](policy::TrustedKey& k) { fields(c, k); });
}

template <class C>
void fields(C& c, policy::Policy& v) {
  c.i32(v.version);
  c.str(v.secrets_dir, kMaxPolicyPathBytes);
  fields(c, v.audit);
  fields(c, v.signatures);
  c.list(v.profiles, policy::kMaxProfiles, [&](policy::Profile& p) { fields(c, p); });
  c.list(v.rules, policy::kMaxRules, [&](policy::Rule& r) { fields(c, r); });
  c.boolean(v.rules_written);
  check(c, [&] { return policy_level_problem(v); });  // each profile checked itself as it decoded
}

#define GH_BOTH(T)                          \
  template void fields(Encoder&, T&);       \
  template void fields(Decoder&, T&);
GH_BOTH(policy::JobUser)
GH_BOTH(policy::UidPool)
GH_BOTH(policy::Filesystem)
GH_BOTH(policy::Network)
GH_BOTH(policy::DockerProxyRules)
GH_BOTH(policy::Docker)
GH_BOTH(policy::Resources)
GH_BOTH(policy::SeccompChanges)
GH_BOTH(policy::Environment)
GH_BOTH(policy::SecretExposure)
GH_BOTH(policy::Machine)
GH_BOTH(policy::Profile)
GH_BOTH(policy::RuleMatch)
GH_BOTH(policy::Rule)
GH_BOTH(policy::AuditSettings)
GH_BOTH(policy::TrustedKey)
GH_BOTH(policy::Signatures)
GH_BOTH(policy::Policy)
#undef GH_BOTH

}  // namespace gh::ipc
