// `policy diff`: what a proposed policy widens, narrows and keeps, field by
// field, for the reviewer of a change to policy.yaml.
//
// A reviewer must never be told "narrowed" about something that grants
// more, so where the direction cannot be known (a different user name, a
// changed environment value, a rule edited or moved) the change counts as
// widened and the line says so. Fields that only mean something in one mode
// (network.allow outside egress, docker.socket with docker denied, the
// proxy's rules outside proxy, overlay_size without an overlay root) are
// compared only when both sides use them; a mode change covers the rest.
#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "policy/glob_cover.hpp"
#include "policy/host_pattern.hpp"
#include "policy/policy.hpp"
#include "policy/tools_text.hpp"

namespace gh::policy {

namespace {

using Kind = DiffLine::Kind;
using text::bytes;
using text::shown;
using text::shown_list;

constexpr const char* kUnknownDirection = " (direction unknown: counted as widened)";
constexpr uint64_t kInfinite = std::numeric_limits<uint64_t>::max();

// The entries of `now` not in `was`, and of `was` not in `now`.
std::pair<std::vector<std::string>, std::vector<std::string>> set_change(const std::vector<std::string>& was,
                                                                         const std::vector<std::string>& now) {
  std::pair<std::vector<std::string>, std::vector<std::string>> out;
  for (const auto& s : now)
    if (std::find(was.begin(), was.end(), s) == was.end()) out.first.push_back(s);
  for (const auto& s : was)
    if (std::find(now.begin(), now.end(), s) == now.end()) out.second.push_back(s);
  return out;
}

class Differ {
 public:
  explicit Differ(std::vector<DiffLine>& out) : out_(out) {}

  void at(std::string prefix) { prefix_ = std::move(prefix); }
  void add(Kind k, const std::string& s) { out_.push_back({k, prefix_ + s}); }

  // A field whose values are not ordered: any change counts as widened.
  void changed(const std::string& field, const std::string& was, const std::string& now) {
    if (was == now)
      add(Kind::Unchanged, field + ": " + was);
    else
      add(Kind::Widened, field + ": " + was + " -> " + now + kUnknownDirection);
  }

  // An ordered field where more is wider.
  template <typename T, typename Show>
  void ordered(const std::string& field, T was, T now, Show show) {
    if (was == now)
      add(Kind::Unchanged, field + ": " + show(was));
    else
      add(now > was ? Kind::Widened : Kind::Narrowed, field + ": " + show(was) + " -> " + show(now));
  }

  // A list of patterns compared by what they match: a new set every
  // pattern of which lies within the old set is narrower, one that holds
  // every old pattern wider; when neither can be shown (the cover functions
  // are sound, not complete), "changed, not provably narrower", counted as
  // widened. `cover(outer, inner)`: every pattern of inner lies within outer.
  template <typename Cover>
  void patterns(const std::string& field, const std::vector<std::string>& was, const std::vector<std::string>& now,
                Kind added_kind, Cover cover) {
    const auto [added, removed] = set_change(was, now);
    if (added.empty() && removed.empty()) {
      add(Kind::Unchanged, field + ": " + shown_list(now));
      return;
    }
    const Kind removed_kind = added_kind == Kind::Widened ? Kind::Narrowed : Kind::Widened;
    const bool inside = cover(was, now), around = cover(now, was);
    const std::string change = (added.empty() ? "" : "added " + shown_list(added)) +
                               (added.empty() || removed.empty() ? "" : ", ") +
                               (removed.empty() ? "" : "removed " + shown_list(removed));
    // Only an edit that both adds and removes needs saying why.
    const bool both = !added.empty() && !removed.empty();
    if (inside && around)
      add(Kind::Unchanged, field + ": " + change + " (written differently, matching the same)");
    else if (inside)
      add(removed_kind, field + ": " + change + (both ? " (everything matched now was matched before)" : ""));
    else if (around)
      add(added_kind, field + ": " + change + (both ? " (everything matched before is matched now)" : ""));
    else
      add(Kind::Widened, field + ": " + change + " (changed, not provably narrower)");
  }

  // Glob lists (glob_cover.hpp). `normalised`: a pattern without glob
  // characters is a name the matcher normalises first (docker's `busybox`
  // is docker.io/library/busybox:latest), so its text says nothing about
  // what a glob covers: it counts as covered only by itself.
  void globs(const std::string& field, const std::vector<std::string>& was, const std::vector<std::string>& now,
             Kind added_kind, bool normalised = false) {
    patterns(field, was, now, added_kind, [normalised](const auto& outer, const auto& inner) {
      if (!normalised) return globs_cover(outer, inner);
      return std::all_of(inner.begin(), inner.end(), [&](const std::string& p) {
        if (p.find_first_of("*?") == std::string::npos) return std::find(outer.begin(), outer.end(), p) != outer.end();
        return globs_cover(outer, {p});
      });
    });
  }

  // A list compared as a set: entries added are `added_kind`, removed the
  // opposite. Same entries in another order is the same set (the canonical
  // form sorts it too), unless `order_matters`.
  void list(const std::string& field, const std::vector<std::string>& was, const std::vector<std::string>& now,
            Kind added_kind, bool order_matters = false) {
    const auto [added, removed] = set_change(was, now);
    const Kind removed_kind = added_kind == Kind::Widened ? Kind::Narrowed : Kind::Widened;
    if (!added.empty()) add(added_kind, field + ": added " + shown_list(added));
    if (!removed.empty()) add(removed_kind, field + ": removed " + shown_list(removed));
    if (added.empty() && removed.empty()) {
      if (was == now || !order_matters)
        add(Kind::Unchanged, field + ": " + shown_list(now));
      else
        add(Kind::Widened, field + ": reordered to " + shown_list(now) + kUnknownDirection);
    }
  }

 private:
  std::vector<DiffLine>& out_;
  std::string prefix_;
};

std::string num(uint64_t v) { return std::to_string(v); }
std::string size(uint64_t v) { return v == kInfinite ? "unlimited" : bytes(v); }
std::string yes_no(bool b) { return b ? "true" : "false"; }
uint64_t mem(uint64_t v) { return v == 0 ? kInfinite : v; }  // memory 0 = unlimited

int rank(NetworkMode m) {
  switch (m) {
    case NetworkMode::None: return 0;
    case NetworkMode::Egress: return 1;
    case NetworkMode::Host: return 2;
  }
  return 2;
}
int rank(DockerMode m) {
  switch (m) {
    case DockerMode::Deny: return 0;
    case DockerMode::Proxy: return 1;
    case DockerMode::Direct: return 2;
  }
  return 2;
}
int rank(RootFs r) {
  switch (r) {
    case RootFs::Host: return 0;
    case RootFs::Overlay: return 1;
  }
  return 1;
}

// `detail` describes the new side's dependent fields (the allow list, the
// proxy's rules) when the mode change brings them in: compared field by
// field they would be skipped, and a reviewer must still see them.
template <typename Mode>
void mode(Differ& d, const std::string& field, Mode was, Mode now, const std::string& detail = {}) {
  d.ordered(field, rank(was), rank(now), [&](int r) {
    const bool is_now = r == rank(now) && was != now;
    return std::string(text::name(is_now ? now : was)) + (is_now ? detail : std::string());
  });
}

void user(Differ& d, const Profile& a, const Profile& b) {
  d.ordered("user.root_in_namespace", a.user.root_in_namespace, b.user.root_in_namespace, yes_no);
  d.changed("user.name", shown(a.user.name), shown(b.user.name));
  d.changed("user.uid", num(a.user.uid), num(b.user.uid));
  d.changed("user.gid", num(a.user.gid), num(b.user.gid));
  d.changed("user.home", shown(a.user.home), shown(b.user.home));
  d.changed("uid_pool.first", num(a.uid_pool.first), num(b.uid_pool.first));
  d.ordered("uid_pool.count", a.uid_pool.count, b.uid_pool.count, [](uint32_t v) { return num(v); });
}

void filesystem(Differ& d, const Filesystem& a, const Filesystem& b) {
  mode(d, "filesystem.root", a.root, b.root);
  const bool ao = a.root == RootFs::Overlay, bo = b.root == RootFs::Overlay;
  if (ao && bo)
    d.ordered("filesystem.overlay_size", a.overlay_bytes, b.overlay_bytes, size);
  else if (!ao && !bo)
    d.add(Kind::Unchanged, "filesystem.overlay_size: not used (root: host)");
  d.list("filesystem.read_only", a.read_only, b.read_only, Kind::Widened);
  d.list("filesystem.read_write", a.read_write, b.read_write, Kind::Widened);
  d.list("filesystem.hidden", a.hidden, b.hidden, Kind::Narrowed);
  d.ordered("filesystem.tmp_size", a.tmp_bytes, b.tmp_bytes, size);
  d.ordered("filesystem.home_size", a.home_bytes, b.home_bytes, size);
}

void network(Differ& d, const Network& a, const Network& b) {
  mode(d, "network.mode", a.mode, b.mode,
       b.mode == NetworkMode::Egress ? " (allow: " + shown_list(b.allow) + ")" : std::string());
  const bool ae = a.mode == NetworkMode::Egress, be = b.mode == NetworkMode::Egress;
  if (ae && be)
    d.patterns("network.allow", a.allow, b.allow, Kind::Widened, host_patterns_cover);
  else if (!ae && !be)
    d.add(Kind::Unchanged, "network.allow: not used (no egress)");
}

void docker(Differ& d, const Profile& pa, const Profile& pb) {
  const Docker& a = pa.docker;
  const Docker& b = pb.docker;
  std::string detail;
  if (b.mode == DockerMode::Proxy)
    detail = " (images: " + shown_list(b.proxy.images) + "; push: " + shown_list(b.proxy.push) +
             "; bind paths: " + shown_list(b.proxy.bind_paths, "the working directory") +
             "; ports: " + shown_list(b.proxy.ports) + "; buildkit: " + yes_no(b.proxy.buildkit) + ")";
  mode(d, "docker.mode", a.mode, b.mode, detail);
  const bool as = a.mode != DockerMode::Deny, bs = b.mode != DockerMode::Deny;
  if (as && bs)
    d.changed("docker.socket", shown(a.socket), shown(b.socket));
  else if (!as && !bs)
    d.add(Kind::Unchanged, "docker.socket: not used (docker: deny)");
  const bool ap = a.mode == DockerMode::Proxy, bp = b.mode == DockerMode::Proxy;
  if (!ap && !bp) {
    d.add(Kind::Unchanged, "docker.proxy: not used (no proxy)");
    return;
  }
  if (!ap || !bp) return;
  d.globs("docker.proxy.images", a.proxy.images, b.proxy.images, Kind::Widened, true);
  d.globs("docker.proxy.push", a.proxy.push, b.proxy.push, Kind::Widened, true);
  d.list("docker.proxy.bind_paths", a.proxy.bind_paths, b.proxy.bind_paths, Kind::Widened);
  d.patterns("docker.proxy.ports", a.proxy.ports, b.proxy.ports, Kind::Widened, port_lists_cover);
  d.ordered("docker.proxy.buildkit", a.proxy.buildkit, b.proxy.buildkit, yes_no);
  // Unset limits are the profile's own.
  d.ordered("docker.proxy.memory", mem(a.proxy.memory_bytes.value_or(pa.resources.memory_bytes)),
            mem(b.proxy.memory_bytes.value_or(pb.resources.memory_bytes)), size);
  d.ordered("docker.proxy.pids", a.proxy.pids.value_or(pa.resources.pids), b.proxy.pids.value_or(pb.resources.pids),
            num);
}

void resources(Differ& d, const Resources& a, const Resources& b) {
  d.ordered("resources.memory", mem(a.memory_bytes), mem(b.memory_bytes), size);
  d.ordered("resources.pids", a.pids, b.pids, num);
  d.ordered("resources.cpus", a.cpus, b.cpus, text::number);
  d.ordered("resources.max_run_time", a.max_run_time_s, b.max_run_time_s, text::duration);
  d.ordered("resources.no_output_timeout", a.no_output_timeout_s, b.no_output_timeout_s, text::duration);
  d.ordered("resources.open_files", a.open_files, b.open_files, num);
  d.ordered("resources.file_size", a.file_size_bytes, b.file_size_bytes, size);
}

void environment(Differ& d, const Environment& a, const Environment& b) {
  std::map<std::string, std::string> was(a.set.begin(), a.set.end()), now(b.set.begin(), b.set.end());
  bool any = false;
  for (const auto& [k, v] : now) {
    auto it = was.find(k);
    if (it == was.end()) {
      d.add(Kind::Widened, "environment.set: " + shown(k) + " added (=" + text::quote(v) + ")" + kUnknownDirection);
      any = true;
    } else if (it->second != v) {
      d.add(Kind::Widened, "environment.set: " + shown(k) + ": " + text::quote(it->second) + " -> " +
                               text::quote(v) + kUnknownDirection);
      any = true;
    }
  }
  for (const auto& [k, v] : was)
    if (!now.count(k)) {
      d.add(Kind::Widened, "environment.set: " + shown(k) + " removed (was " + text::quote(v) + ")" +
                               kUnknownDirection);
      any = true;
    }
  if (!any) {
    std::string s;
    for (const auto& [k, v] : now) s += (s.empty() ? "" : ", ") + shown(k) + "=" + text::quote(v);
    d.add(Kind::Unchanged, "environment.set: " + (s.empty() ? std::string("none") : s));
  }
  d.list("environment.pass", a.pass, b.pass, Kind::Widened);
  d.list("environment.deny", a.deny, b.deny, Kind::Narrowed);
}

std::string exposure(const SecretExposure& s) {
  return std::string(text::name(s.as)) + " " + shown(s.target);
}

void secrets(Differ& d, const std::vector<SecretExposure>& a, const std::vector<SecretExposure>& b) {
  auto find = [](const std::vector<SecretExposure>& v, const std::string& name) -> const SecretExposure* {
    for (const auto& s : v)
      if (s.name == name) return &s;
    return nullptr;
  };
  bool any = false;
  for (const auto& s : b) {
    const SecretExposure* old = find(a, s.name);
    if (!old) {
      d.add(Kind::Widened, "secrets: " + shown(s.name) + " added (as " + exposure(s) + ")");
      any = true;
    } else if (old->as != s.as || old->target != s.target) {
      d.add(Kind::Widened, "secrets: " + shown(s.name) + ": as " + exposure(*old) + " -> as " + exposure(s));
      any = true;
    }
  }
  for (const auto& s : a)
    if (!find(b, s.name)) {
      d.add(Kind::Narrowed, "secrets: " + shown(s.name) + " removed (was as " + exposure(s) + ")");
      any = true;
    }
  if (!any) {
    std::string s;
    for (const auto& e : b) s += (s.empty() ? "" : ", ") + shown(e.name) + " as " + exposure(e);
    d.add(Kind::Unchanged, "secrets: " + (s.empty() ? std::string("none") : s));
  }
}

void profile(Differ& d, const Profile& a, const Profile& b) {
  d.at("profile `" + b.name + "`: ");
  user(d, a, b);
  filesystem(d, a.filesystem, b.filesystem);
  network(d, a.network, b.network);
  docker(d, a, b);
  resources(d, a.resources, b.resources);
  d.list("seccomp.allow", a.seccomp.allow, b.seccomp.allow, Kind::Widened);
  d.list("seccomp.deny", a.seccomp.deny, b.seccomp.deny, Kind::Narrowed);
  environment(d, a.environment, b.environment);
  secrets(d, a.secrets, b.secrets);
  // A pattern added lets more jobs through (even one another pattern
  // already covered: counted as widened all the same).
  d.globs("machine.images", a.machine.images, b.machine.images, Kind::Widened);
  d.globs("machine.resource_classes", a.machine.resource_classes, b.machine.resource_classes, Kind::Widened);
}

// More keys, or another key under a known name, let more jobs through;
// `required: false` lets unsigned ones through.
void signatures(Differ& d, const Signatures& a, const Signatures& b) {
  d.at("");
  if (a.required == b.required)
    d.add(Kind::Unchanged, std::string("signatures.required: ") + yes_no(b.required));
  else
    d.add(b.required ? Kind::Narrowed : Kind::Widened,
          std::string("signatures.required: ") + yes_no(a.required) + " -> " + yes_no(b.required));
  bool any = false;
  for (const auto& k : b.trusted_keys) {
    const TrustedKey* old = a.find(k.name);
    if (!old) {
      d.add(Kind::Widened, "signatures.trusted_keys: `" + k.name + "` added (ed25519 " + public_key_base64(k) + ")");
      any = true;
    } else if (old->public_key != k.public_key) {
      d.add(Kind::Widened, "signatures.trusted_keys: `" + k.name + "` replaced: ed25519 " + public_key_base64(*old) +
                               " -> " + public_key_base64(k) + " (another key now signs as `" + k.name + "`)");
      any = true;
    }
  }
  for (const auto& k : a.trusted_keys)
    if (!b.find(k.name)) {
      d.add(Kind::Narrowed, "signatures.trusted_keys: `" + k.name + "` removed (jobs it signs are refused)");
      any = true;
    }
  if (!any) {
    std::vector<std::string> names;
    for (const auto& k : b.trusted_keys) names.push_back(k.name);
    d.add(Kind::Unchanged, "signatures.trusted_keys: " + shown_list(names));
  }
}

bool same_rule(const Rule& a, const Rule& b) {
  const auto& x = a.match;
  const auto& y = b.match;
  return a.profile == b.profile && x.project == y.project && x.branch == y.branch && x.tag == y.tag &&
         x.trigger == y.trigger && x.job == y.job && x.signed_by == y.signed_by;
}

std::string rule_text(const Rule& r, size_t i) {
  return text::rule_condition(r.match, i == 0) + " run with profile `" + r.profile + "`";
}

void rules(Differ& d, const std::vector<Rule>& a, const std::vector<Rule>& b) {
  d.at("");
  // Rules are ordered and the first match wins, so any edit, insertion or
  // move can hand some job a wider profile: all count as widened.
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string n = "rule " + std::to_string(i + 1);
    if (i >= a.size())
      d.add(Kind::Widened, n + " added: " + rule_text(b[i], i) + " (any rule change counts as widened)");
    else if (i >= b.size())
      d.add(Kind::Widened, n + " removed: was " + rule_text(a[i], i) + " (any rule change counts as widened)");
    else if (!same_rule(a[i], b[i]))
      d.add(Kind::Widened, n + " changed: " + rule_text(a[i], i) + " -> " + rule_text(b[i], i) +
                               " (any rule change counts as widened)");
    else
      d.add(Kind::Unchanged, n + ": " + rule_text(b[i], i));
  }
}

}  // namespace

std::vector<DiffLine> diff(const Policy& old_policy, const Policy& new_policy) {
  std::vector<DiffLine> out;
  Differ d(out);
  d.changed("secrets_dir", shown(old_policy.secrets_dir), shown(new_policy.secrets_dir));
  d.changed("audit.log", shown(old_policy.audit.log), shown(new_policy.audit.log));
  signatures(d, old_policy.signatures, new_policy.signatures);
  for (const auto& b : new_policy.profiles) {
    const Profile* a = nullptr;
    for (const auto& p : old_policy.profiles)
      if (p.name == b.name) a = &p;
    if (a) {
      profile(d, *a, b);
    } else {
      d.at("");
      d.add(Kind::Widened, "profile `" + b.name + "` added");
    }
  }
  d.at("");
  for (const auto& a : old_policy.profiles) {
    const bool kept = std::any_of(new_policy.profiles.begin(), new_policy.profiles.end(),
                                  [&](const Profile& p) { return p.name == a.name; });
    if (!kept) d.add(Kind::Narrowed, "profile `" + a.name + "` removed");
  }
  rules(d, old_policy.rules, new_policy.rules);
  return out;
}

std::string render_diff(const std::vector<DiffLine>& lines) {
  std::string s;
  size_t counts[3] = {0, 0, 0};
  const std::pair<Kind, const char*> order[] = {
      {Kind::Widened, "+ WIDENED  "}, {Kind::Narrowed, "- narrowed  "}, {Kind::Unchanged, "  unchanged "}};
  for (size_t k = 0; k < 3; ++k)
    for (const auto& l : lines)
      if (l.kind == order[k].first) {
        s += order[k].second + l.text + "\n";
        ++counts[k];
      }
  s += std::to_string(counts[0]) + " widened, " + std::to_string(counts[1]) + " narrowed, " +
       std::to_string(counts[2]) + " unchanged\n";
  return s;
}

}  // namespace gh::policy
