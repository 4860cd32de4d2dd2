// The canonical form of a policy, and its digest.
//
// Two files that mean the same thing (one leaning on defaults and `extends`,
// one spelling everything out) have the same canonical form, so the digest in
// an audit record identifies what jobs were allowed, not how it was typed.
// The form is itself a policy file: every field of every resolved profile,
// keys in the order of the syntax reference, sizes in bytes, durations in
// seconds, every string double-quoted; profiles by name, every map by key,
// and every list that is a set sorted (what the list means does not depend
// on its order: network.allow, docker.proxy's lists, seccomp, environment's
// pass and deny, secrets, trusted keys, machine's lists, a rule's match
// values, the filesystem lists, which the broker mounts parents first by
// path). network.allow and docker.proxy.ports are written in one spelling
// of what they match (host_pattern.hpp). The one list whose order means something keeps it: `rules` (the
// first match wins). docs/policy.md says the same.
// parse(canonical(P)) has the same canonical form as P, byte for byte
// (tests/unit/test_policy_tools.cpp), and so has any reordering of P's
// profiles, maps and sets (tests/unit/test_policy_digest.cpp).
//
// Fields are left out only where the syntax forbids them, and then they
// carry no meaning: name/uid/gid with root_in_namespace (always root, 0, 0),
// overlay_size without root: overlay, allow outside egress, acknowledge
// outside direct, socket with docker denied, proxy outside proxy, and the
// proxy's optional limits when unset ("the profile's").

#include <algorithm>
#include <tuple>
#include <string>
#include <vector>

#include "common/sha256.hpp"
#include "policy/host_pattern.hpp"
#include "policy/policy.hpp"
#include "policy/tools_text.hpp"

namespace gh::policy {

namespace {

using text::quote;

class Writer {
 public:
  // One `key: value` line at `depth` levels of two spaces.
  void kv(int depth, std::string_view key, std::string_view value) {
    indent(depth);
    out_.append(key);
    out_ += ": ";
    out_.append(value);
    out_ += '\n';
  }
  // A `key:` line opening a block.
  void open(int depth, std::string_view key) {
    indent(depth);
    out_.append(key);
    out_ += ":\n";
  }
  void list(int depth, std::string_view key, const std::vector<std::string>& items) {
    std::string v = "[";
    for (size_t i = 0; i < items.size(); ++i) v += (i ? ", " : "") + quote(items[i]);
    kv(depth, key, v + "]");
  }
  std::string take() { return std::move(out_); }

 private:
  void indent(int depth) { out_.append(static_cast<size_t>(depth) * 2, ' '); }
  std::string out_;
};

std::string num(uint64_t v) { return std::to_string(v); }

// A list whose order means nothing (machine.images, machine.resource_classes):
// sorted, so two files listing the same set digest the same.
std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}
std::string boolean(bool b) { return b ? "true" : "false"; }

void write_profile(Writer& w, const Profile& p) {
  w.open(1, quote(p.name));

  w.open(2, "user");
  if (!p.user.root_in_namespace) {
    w.kv(3, "name", quote(p.user.name));
    w.kv(3, "uid", num(p.user.uid));
    w.kv(3, "gid", num(p.user.gid));
  }
  w.kv(3, "home", quote(p.user.home));
  w.kv(3, "root_in_namespace", boolean(p.user.root_in_namespace));

  w.open(2, "uid_pool");
  w.kv(3, "first", num(p.uid_pool.first));
  w.kv(3, "count", num(p.uid_pool.count));

  const auto& fs = p.filesystem;
  w.open(2, "filesystem");
  w.kv(3, "root", text::name(fs.root));
  if (fs.root == RootFs::Overlay) w.kv(3, "overlay_size", num(fs.overlay_bytes));
  // The broker mounts binds parents first by path, whatever the order written.
  w.list(3, "read_only", sorted(fs.read_only));
  w.list(3, "read_write", sorted(fs.read_write));
  w.list(3, "hidden", sorted(fs.hidden));
  w.kv(3, "tmp_size", num(fs.tmp_bytes));
  w.kv(3, "home_size", num(fs.home_bytes));

  w.open(2, "network");
  w.kv(3, "mode", text::name(p.network.mode));
  if (p.network.mode == NetworkMode::Egress) w.list(3, "allow", canonical_host_patterns(p.network.allow));

  const auto& dk = p.docker;
  w.open(2, "docker");
  w.kv(3, "mode", text::name(dk.mode));
  if (dk.mode == DockerMode::Direct) w.kv(3, "acknowledge", quote("root-equivalent"));
  if (dk.mode != DockerMode::Deny) w.kv(3, "socket", quote(dk.socket));
  if (dk.mode == DockerMode::Proxy) {
    const auto& px = dk.proxy;
    w.open(3, "proxy");
    w.list(4, "images", sorted(px.images));
    w.list(4, "push", sorted(px.push));
    w.list(4, "bind_paths", sorted(px.bind_paths));
    w.list(4, "ports", canonical_port_list(px.ports));
    w.kv(4, "buildkit", boolean(px.buildkit));
    if (px.memory_bytes) w.kv(4, "memory", num(*px.memory_bytes));
    if (px.pids) w.kv(4, "pids", num(*px.pids));
  }

  const auto& r = p.resources;
  w.open(2, "resources");
  w.kv(3, "memory", r.memory_bytes == 0 ? "unlimited" : num(r.memory_bytes));
  w.kv(3, "pids", num(r.pids));
  w.kv(3, "cpus", text::number(r.cpus));
  w.kv(3, "max_run_time", num(r.max_run_time_s));
  w.kv(3, "no_output_timeout", num(r.no_output_timeout_s));
  w.kv(3, "open_files", num(r.open_files));
  w.kv(3, "file_size", num(r.file_size_bytes));

  w.open(2, "seccomp");
  w.list(3, "allow", sorted(p.seccomp.allow));
  w.list(3, "deny", sorted(p.seccomp.deny));

  const auto& env = p.environment;
  w.open(2, "environment");
  if (env.set.empty()) {
    w.kv(3, "set", "{}");
  } else {
    w.open(3, "set");
    auto set = env.set;
    std::sort(set.begin(), set.end());
    for (const auto& [k, v] : set) w.kv(4, quote(k), quote(v));
  }
  w.list(3, "pass", sorted(env.pass));
  w.list(3, "deny", sorted(env.deny));

  if (p.secrets.empty()) {
    w.kv(2, "secrets", "[]");
  } else {
    w.open(2, "secrets");
    auto secrets = p.secrets;
    std::sort(secrets.begin(), secrets.end(), [](const auto& a, const auto& b) {
      return std::tie(a.name, a.as, a.target) < std::tie(b.name, b.as, b.target);
    });
    for (const auto& s : secrets) {
      w.kv(3, "- name", quote(s.name));
      w.kv(4, text::name(s.as), quote(s.target));
    }
  }

  w.open(2, "machine");
  w.list(3, "images", sorted(p.machine.images));
  w.list(3, "resource_classes", sorted(p.machine.resource_classes));
}

void write_rule(Writer& w, const Rule& r) {
  const auto& m = r.match;
  if (m.empty()) {
    w.kv(1, "- profile", quote(r.profile));
    return;
  }
  w.open(1, "- match");
  const std::pair<const char*, const std::vector<std::string>*> fields[] = {
      {"project", &m.project}, {"branch", &m.branch}, {"tag", &m.tag},
      {"trigger", &m.trigger}, {"job", &m.job},       {"signed_by", &m.signed_by}};
  for (const auto& [key, values] : fields)
    if (!values->empty()) w.list(3, key, sorted(*values));
  w.kv(2, "profile", quote(r.profile));
}

}  // namespace

std::string canonical_yaml(const Policy& p) {
  Writer w;
  w.kv(0, "version", std::to_string(p.version));
  w.kv(0, "secrets_dir", quote(p.secrets_dir));
  w.open(0, "audit");
  w.kv(1, "log", quote(p.audit.log));
  w.open(0, "signatures");
  w.kv(1, "required", boolean(p.signatures.required));
  if (p.signatures.trusted_keys.empty()) {
    w.kv(1, "trusted_keys", "[]");
  } else {
    w.open(1, "trusted_keys");
    auto keys = p.signatures.trusted_keys;
    std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& k : keys) {
      w.kv(2, "- name", quote(k.name));
      w.kv(3, "ed25519", quote(public_key_base64(k)));
    }
  }
  // Rules name profiles, so their order means nothing.
  std::vector<const Profile*> profiles;
  for (const auto& prof : p.profiles) profiles.push_back(&prof);
  std::sort(profiles.begin(), profiles.end(), [](const Profile* a, const Profile* b) { return a->name < b->name; });
  w.open(0, "profiles");
  for (const auto* prof : profiles) write_profile(w, *prof);
  // Always written, the implicit default too: a file without `rules:` and
  // one with `- profile: default` allow the same jobs the same things.
  w.open(0, "rules");
  for (const auto& r : p.rules) write_rule(w, r);
  return w.take();
}

std::string policy_digest(const Policy& p) { return sha256_hex(canonical_yaml(p)); }

}  // namespace gh::policy
