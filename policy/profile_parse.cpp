// One profile of a policy file: its sections, applied onto a base profile.
//
// An operator reads this file to know what any job may do, so it is as
// strict as the job parser: unknown keys, wrong types and dangerous values
// are errors at their line:col, and every profile is checked (not only the
// one a job picks). A profile starts from the built-in defaults or from its
// resolved parent (`extends`); the keys it writes override one by one.
// Combinations (egress needs an allow list, direct docker needs the
// acknowledgement...) are checked on the result, and an error points at a
// key this profile writes: an inherited mistake is reported once, at the
// parent.
#include <seccomp.h>

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>

#include "policy/profile_parse.hpp"
#include "policy/seccomp_names.hpp"

namespace gh::policy {

Profile builtin_profile() { return Profile{}; }

namespace {

using yaml::Entry;
using yaml::quoted;
using namespace detail;  // value checks (profile_values.cpp)


constexpr size_t kMaxPaths = kMaxProfilePaths, kMaxEnv = kMaxProfileEnv, kMaxPatterns = kMaxHostPatterns,
                 kMaxSyscalls = kMaxSyscallNames;  // profile.hpp
constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;
constexpr const char* kProfileKeys =
    "extends, user, uid_pool, filesystem, network, docker, resources, seccomp, environment, secrets, machine";

// Where this profile writes each key ("network.mode") and each named item
// ("environment.set:NAME"): combination errors point there, and only there.
struct Ctx {
  Diagnostics& d;
  std::string parent;  // "" = the built-in defaults
  std::map<std::string, Mark> written;

  void note(const std::string& key, Mark m) { written.emplace(key, m); }
  const Mark* at(const std::string& key) const {
    auto it = written.find(key);
    return it == written.end() ? nullptr : &it->second;
  }
  std::string inherited() const {
    return parent.empty() ? "the built-in default" : "inherited from profile `" + parent + "`";
  }
};

void unknown(Diagnostics& d, const Entry& e, const std::string& where, const std::string& allowed_keys) {
  d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " " + where, allowed_keys);
}

std::string human_size(uint64_t b) {
  if (b % TiB == 0) return std::to_string(b / TiB) + "T";
  if (b % GiB == 0) return std::to_string(b / GiB) + "G";
  if (b % MiB == 0) return std::to_string(b / MiB) + "M";
  if (b % KiB == 0) return std::to_string(b / KiB) + "K";
  return std::to_string(b);
}

std::string human_duration(uint64_t s) {
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::optional<uint64_t> size(const Entry& e, uint64_t min, uint64_t max, Diagnostics& d, bool unlimited_ok = false) {
  auto s = yaml::get_string(e, d);
  if (!s) return std::nullopt;
  if (unlimited_ok && *s == "unlimited") return 0;
  const std::string range = human_size(min) + " to " + human_size(max);
  auto v = parse_size(*s);
  if (!v || *v < min || *v > max) {
    d.error(yaml::value_mark(e.value, e.mark),
            quoted(e.key) + (v ? " " + *s + " is out of range" : " " + yaml::describe(e.value) + " is not a size"),
            "a size from " + range + ": digits with K, M, G or T (powers of 1024), e.g. 512M, 2G" +
                (unlimited_ok ? "; or unlimited" : ""));
    return std::nullopt;
  }
  return v;
}

std::optional<uint64_t> duration(const Entry& e, uint64_t min, uint64_t max, Diagnostics& d) {
  auto s = yaml::get_string(e, d);
  if (!s) return std::nullopt;
  auto v = parse_duration_seconds(*s);
  if (!v || *v < min || *v > max) {
    d.error(yaml::value_mark(e.value, e.mark),
            quoted(e.key) + (v ? " " + *s + " is out of range" : " " + yaml::describe(e.value) + " is not a duration"),
            "a duration from " + human_duration(min) + " to " + human_duration(max) + ", e.g. 30s, 10m, 1h30m, 2d");
    return std::nullopt;
  }
  return v;
}


// A list of single-line strings, each checked by `problem` (empty = fine),
// duplicates refused. Replaces `out`; notes each item as "key:item".
template <typename Check>
bool string_list(const Entry& e, const std::string& key, size_t max, std::vector<std::string>& out, Ctx& c,
                 const std::string& allowed, Check problem) {
  if (!yaml::expect_list(e, c.d)) return false;
  c.note(key, e.mark);
  out.clear();
  if (e.value.size() > max) {
    c.d.error(e.mark, quoted(e.key) + " lists more than " + std::to_string(max) + " entries",
              "at most " + std::to_string(max));
    return false;
  }
  bool all_ok = true;
  for (const auto& item : e.value) {
    auto s = yaml::get_string(item, "an entry of " + quoted(e.key), c.d);
    const Mark at = yaml::to_mark(item.Mark());
    if (!s) {
      all_ok = false;
    } else if (std::string why = problem(*s); !why.empty()) {
      c.d.error(at, "`" + yaml::printable(*s) + "` in " + quoted(e.key) + " " + why, allowed);
      all_ok = false;
    } else if (std::find(out.begin(), out.end(), *s) != out.end()) {
      c.d.error(at, "`" + *s + "` is listed twice in " + quoted(e.key), "each entry once");
    } else {
      out.push_back(*s);
      c.note(key + ":" + *s, at);
    }
  }
  return all_ok;
}


void parse_user(const Entry& u, JobUser& out, Ctx& c) {
  if (!yaml::expect_map(u, c.d)) return;
  const auto es = yaml::entries(u.value, c.d);
  // root_in_namespace first: it decides what name, uid and gid start from.
  for (const auto& e : es) {
    if (e.key != "root_in_namespace") continue;
    c.note("user.root_in_namespace", e.mark);
    auto v = yaml::get_bool(e, c.d);
    if (!v) continue;
    const bool was = out.root_in_namespace;
    out.root_in_namespace = *v;
    if (*v) out.name = "root", out.uid = 0, out.gid = 0;
    else if (was) out.name = JobUser{}.name, out.uid = JobUser{}.uid, out.gid = JobUser{}.gid;
  }
  for (const auto& e : es) {
    if (e.key == "name") {
      c.note("user.name", e.mark);
      auto v = yaml::get_string(e, c.d);
      if (!v) continue;
      if (!valid_user_name(*v) || *v == "root")
        c.d.error(yaml::value_mark(e.value, e.mark), "user name " + yaml::describe(e.value) + " is not allowed",
                  "1 to 32 of a-z, 0-9, _ and -, starting with a letter or _; not root (see root_in_namespace)");
      else out.name = *v;
    } else if (e.key == "uid" || e.key == "gid") {
      c.note("user." + e.key, e.mark);
      // Ids inside the job's user namespace: 0 is root_in_namespace's, and
      // 65534 is the overflow id unmapped files show up as.
      if (auto v = yaml::get_uint(e, 1, 65533, c.d)) (e.key == "uid" ? out.uid : out.gid) = static_cast<uint32_t>(*v);
    } else if (e.key == "home") {
      auto v = detail::abs_path(e.value, "`home`", c.d, e.mark);
      if (!v) continue;
      if (auto p = touches_protected(*v); !p.empty())
        c.d.error(yaml::value_mark(e.value, e.mark), "`home` " + *v + " would be mounted over " + std::string(p),
                  "a directory such as /home/circleci");
      else out.home = *v;
    } else if (e.key != "root_in_namespace") {
      unknown(c.d, e, "in `user`", "name, uid, gid, home, root_in_namespace");
    }
  }
  if (!out.root_in_namespace) return;
  for (const char* k : {"name", "uid", "gid"})
    if (const Mark* m = c.at(std::string("user.") + k))
      c.d.error(*m, std::string("`") + k + "` cannot be set: the job runs as root (uid 0) in its namespace (" +
                        (c.at("user.root_in_namespace") ? "root_in_namespace: true here" : c.inherited()) + ")",
                "leave out name, uid and gid, or write root_in_namespace: false");
}

void parse_uid_pool(const Entry& u, UidPool& out, Ctx& c) {
  if (!yaml::expect_map(u, c.d)) return;
  std::optional<uint64_t> first, count;
  Mark first_mark = u.mark;
  for (const auto& e : yaml::entries(u.value, c.d)) {
    if (e.key == "first") {
      first = yaml::get_uint(e, 0, 4294967295u, c.d);
      first_mark = yaml::value_mark(e.value, e.mark);
    } else if (e.key == "count") {
      count = yaml::get_uint(e, 1, 65536, c.d);
    } else {
      unknown(c.d, e, "in `uid_pool`", "first, count");
    }
  }
  const uint64_t f = first.value_or(out.first), n = count.value_or(out.count);
  if (first && f == 0) {
    c.d.error(first_mark, "the uid pool includes uid 0 (root on the host)", "first: 1000 or more");
  } else if (first && f < 1000) {
    c.d.error(first_mark, "the uid pool starts at " + std::to_string(f) + ", among the host's system users (below 1000)",
              "first: 1000 or more");
  } else if (f + n - 1 > 4294967294u) {
    c.d.error(first_mark, "the uid pool runs past uid 4294967294 (uid 4294967295 means \"no uid\")",
              "first + count - 1 at most 4294967294");
  } else {
    out.first = static_cast<uint32_t>(f);
    out.count = static_cast<uint32_t>(n);
  }
}

void parse_paths(const Entry& e, std::vector<std::string>& out, bool writable, bool hide, Diagnostics& d) {
  if (!yaml::expect_list(e, d)) return;
  out.clear();
  if (e.value.size() > kMaxPaths) {
    d.error(e.mark, quoted(e.key) + " lists more than " + std::to_string(kMaxPaths) + " paths",
            "at most " + std::to_string(kMaxPaths));
    return;
  }
  for (const auto& item : e.value) {
    auto p = detail::abs_path(item, "a path in " + quoted(e.key), d, {});
    if (!p) continue;
    const Mark at = yaml::to_mark(item.Mark());
    if (std::find(out.begin(), out.end(), *p) != out.end()) {
      d.error(at, *p + " is listed twice in " + quoted(e.key), "each path once");
    } else if (hide && *p == "/") {
      d.error(at, "`hidden` cannot hide the whole file system", "paths below /");
    } else if (auto prot = writable ? touches_protected(*p) : std::string_view(); !prot.empty()) {
      d.error(at, *p == prot ? "`" + e.key + "` of " + *p + " would let jobs rewrite the host"
                             : "`" + e.key + "` of " + *p + " would let jobs write " + std::string(prot),
              "writable paths outside /, /etc, /usr, /bin, /lib*, /boot, /proc, /sys, /dev, /root, /run and "
              "gatehouse's own state");
    } else {
      out.push_back(*p);
    }
  }
}

void parse_filesystem(const Entry& f, Filesystem& out, Ctx& c) {
  if (!yaml::expect_map(f, c.d)) return;
  const auto es = yaml::entries(f.value, c.d);
  if (std::any_of(es.begin(), es.end(), [](const Entry& e) { return e.key == "root"; }))
    out.overlay_bytes = Filesystem{}.overlay_bytes;
  bool root_ok = true;
  for (const auto& e : es) {
    if (e.key == "root") {
      c.note("filesystem.root", e.mark);
      auto v = yaml::get_string(e, c.d);
      if (v && *v == "host") out.root = RootFs::Host;
      else if (v && *v == "overlay") out.root = RootFs::Overlay;
      else if (v) c.d.error(yaml::value_mark(e.value, e.mark), "`root` " + yaml::describe(e.value) + " is not known", "host, overlay");
      root_ok = v && (*v == "host" || *v == "overlay");
    } else if (e.key == "overlay_size") {
      c.note("filesystem.overlay_size", e.mark);
      if (auto v = size(e, 16 * MiB, TiB, c.d)) out.overlay_bytes = *v;
    } else if (e.key == "read_only") {
      parse_paths(e, out.read_only, false, false, c.d);
    } else if (e.key == "read_write") {
      parse_paths(e, out.read_write, true, false, c.d);
    } else if (e.key == "hidden") {
      parse_paths(e, out.hidden, false, true, c.d);
    } else if (e.key == "tmp_size") {
      if (auto v = size(e, MiB, TiB, c.d)) out.tmp_bytes = *v;
    } else if (e.key == "home_size") {
      if (auto v = size(e, MiB, TiB, c.d)) out.home_bytes = *v;
    } else {
      unknown(c.d, e, "in `filesystem`", "root, overlay_size, read_only, read_write, hidden, tmp_size, home_size");
    }
  }
  if (const Mark* m = c.at("filesystem.overlay_size"); m && root_ok && out.root != RootFs::Overlay)
    c.d.error(*m, "`overlay_size` is only meaningful with root: overlay (the root here is host" +
                      (c.at("filesystem.root") ? std::string() : ", " + c.inherited()) + ")",
              "root: overlay, or leave out overlay_size");
}

template <typename Mode, size_t N>
std::optional<Mode> mode_value(const YAML::Node& n, const std::string& what, Mark if_null,
                               const std::pair<std::string_view, Mode> (&names)[N], Diagnostics& d) {
  auto v = yaml::get_string(n, what, d, yaml::Text::SingleLine, if_null);
  if (!v) return std::nullopt;
  std::string allowed;
  for (const auto& [name, mode] : names) {
    if (*v == name) return mode;
    allowed += (allowed.empty() ? "" : ", ") + std::string(name);
  }
  d.error(yaml::value_mark(n, if_null), what + " " + yaml::describe(n) + " is not known", allowed);
  return std::nullopt;
}

constexpr std::pair<std::string_view, NetworkMode> kNetworkModes[] = {
    {"none", NetworkMode::None}, {"egress", NetworkMode::Egress}, {"host", NetworkMode::Host}};
constexpr std::pair<std::string_view, DockerMode> kDockerModes[] = {
    {"deny", DockerMode::Deny}, {"proxy", DockerMode::Proxy}, {"direct", DockerMode::Direct}};

// `network: host` is shorthand for `network: {mode: host}`; the same for
// `docker`. The entries of the section, or nullopt after an error.
std::optional<std::vector<Entry>> mode_section(const Entry& n, const char* allowed, Ctx& c) {
  if (n.value.IsScalar()) return std::vector<Entry>{{"mode", n.value, yaml::value_mark(n.value, n.mark)}};
  if (n.value.IsMap()) return yaml::entries(n.value, c.d);
  c.d.error(yaml::value_mark(n.value, n.mark),
            quoted(n.key) + " must be a mode or a mapping, found " + yaml::describe(n.value), allowed);
  return std::nullopt;
}

void parse_network(const Entry& n, Network& out, Ctx& c) {
  out.mark = n.mark;
  auto section = mode_section(n, "none, egress, host, or {mode: egress, allow: [HOST:PORT, ...]}", c);
  if (!section) return;
  const std::vector<Entry>& es = *section;
  if (std::any_of(es.begin(), es.end(), [](const Entry& e) { return e.key == "mode"; })) out.allow.clear();
  // A mode or list that is already an error does not get a second one for
  // the combination.
  bool valid = true;
  for (const auto& e : es) {
    if (e.key == "mode") {
      c.note("network.mode", e.mark);
      auto m = mode_value(e.value, "network mode", e.mark, kNetworkModes, c.d);
      if (m) out.mode = *m;
      valid = valid && m;
    } else if (e.key == "allow") {
      valid = string_list(e, "network.allow", kMaxPatterns, out.allow, c,
                  "HOST:PORT: a host name (a leading `*.` allowed), an IPv4 address or network, or [IPv6] or [IPv6]/len; "
                  "a port, a range 8000-8100, or *",
                  host_port_problem) && valid;
    } else {
      unknown(c.d, e, "in `network`", "mode, allow");
    }
  }
  const Mark* mode = c.at("network.mode");
  const Mark* allow = c.at("network.allow");
  if (!valid) return;
  if (out.mode == NetworkMode::Egress && out.allow.empty() && (mode || allow))
    c.d.error(allow ? *allow : *mode, "network mode egress needs a non-empty `allow` list: without one it is none",
              "allow: [\"registry.npmjs.org:443\", ...]");
  if (out.mode != NetworkMode::Egress && allow)
    c.d.error(*allow, "`allow` is only used with network mode egress" + (mode ? std::string() : " (" + c.inherited() + " is not egress)"),
              "mode: egress, or leave out allow");
}

void parse_proxy(const Entry& p, DockerProxyRules& out, Ctx& c) {
  if (!yaml::expect_map(p, c.d)) return;
  for (const auto& e : yaml::entries(p.value, c.d)) {
    if (e.key == "images" || e.key == "push") {
      string_list(e, "docker.proxy." + e.key, kMaxPatterns, e.key == "images" ? out.images : out.push, c,
                  "image patterns: `*` within a path component, `**` across, `?` one character", glob_problem);
    } else if (e.key == "bind_paths") {
      parse_paths(e, out.bind_paths, false, false, c.d);
    } else if (e.key == "ports") {
      string_list(e, "docker.proxy.ports", kMaxPatterns, out.ports, c, "a port 1-65535 or a range such as 9000-9010",
                  [](const std::string& s) { return port_problem(s, false); });
    } else if (e.key == "buildkit") {
      if (auto v = yaml::get_bool(e, c.d)) out.buildkit = *v;
    } else if (e.key == "memory") {
      if (auto v = size(e, 32 * MiB, 16 * TiB, c.d)) out.memory_bytes = *v;
    } else if (e.key == "pids") {
      if (auto v = yaml::get_uint(e, 16, 4194304, c.d)) out.pids = *v;
    } else {
      unknown(c.d, e, "in `proxy`", "images, push, bind_paths, ports, buildkit, memory, pids");
    }
  }
}

void parse_docker(const Entry& n, Docker& out, Ctx& c) {
  auto section = mode_section(n, "deny, proxy, direct, or {mode: ..., ...}", c);
  if (!section) return;
  const std::vector<Entry>& es = *section;
  if (std::any_of(es.begin(), es.end(), [](const Entry& e) { return e.key == "mode"; })) {
    out.acknowledged_root_equivalent = false;
    out.proxy = DockerProxyRules{};
  }
  bool valid = true;  // as in parse_network
  for (const auto& e : es) {
    if (e.key == "mode") {
      c.note("docker.mode", e.mark);
      auto m = mode_value(e.value, "docker mode", e.mark, kDockerModes, c.d);
      if (m) out.mode = *m;
      valid = valid && m;
    } else if (e.key == "acknowledge") {
      c.note("docker.acknowledge", e.mark);
      auto v = yaml::get_string(e, c.d);
      valid = valid && v && *v == "root-equivalent";
      if (v && *v == "root-equivalent") out.acknowledged_root_equivalent = true;
      else if (v) c.d.error(yaml::value_mark(e.value, e.mark), "`acknowledge` " + yaml::describe(e.value) + " is not the acknowledgement",
                            "exactly: acknowledge: root-equivalent");
    } else if (e.key == "socket") {
      c.note("docker.socket", e.mark);
      if (auto v = detail::abs_path(e.value, "`socket`", c.d, e.mark)) out.socket = *v;
    } else if (e.key == "proxy") {
      c.note("docker.proxy", e.mark);
      parse_proxy(e, out.proxy, c);
    } else {
      unknown(c.d, e, "in `docker`", "mode, acknowledge, socket, proxy");
    }
  }
  const Mark* mode = c.at("docker.mode");
  // Under deny the socket is unused: keep it at the default so every
  // resolved profile says the same thing for the same meaning.
  if (mode && out.mode == DockerMode::Deny && !c.at("docker.socket")) out.socket = Docker{}.socket;
  if (!valid) return;
  const std::string why = mode ? "" : " (" + c.inherited() + ")";
  if (mode && out.mode == DockerMode::Direct && !out.acknowledged_root_equivalent)
    c.d.error(*mode, "docker mode direct gives every job root on the host; it needs `acknowledge: root-equivalent`",
              "docker: {mode: direct, acknowledge: root-equivalent}, or mode: proxy or deny");
  if (const Mark* m = c.at("docker.acknowledge"); m && out.mode != DockerMode::Direct)
    c.d.error(*m, "`acknowledge` is only used with docker mode direct" + why, "leave it out");
  if (const Mark* m = c.at("docker.socket"); m && out.mode == DockerMode::Deny)
    c.d.error(*m, "`socket` is only used with docker mode direct or proxy" + why, "leave it out");
  if (const Mark* m = c.at("docker.proxy"); m && out.mode != DockerMode::Proxy)
    c.d.error(*m, "`proxy` rules are only used with docker mode proxy" + why, "mode: proxy, or leave out proxy");
}

void parse_resources(const Entry& r, Resources& out, Diagnostics& d) {
  if (!yaml::expect_map(r, d)) return;
  for (const auto& e : yaml::entries(r.value, d)) {
    if (e.key == "memory") {
      if (auto v = size(e, 32 * MiB, 16 * TiB, d, true)) out.memory_bytes = *v;
    } else if (e.key == "pids") {
      if (auto v = yaml::get_uint(e, 16, 4194304, d)) out.pids = *v;
    } else if (e.key == "cpus") {
      if (auto v = yaml::get_number(e, 0.01, 1024.0, d)) out.cpus = *v;
    } else if (e.key == "max_run_time") {
      if (auto v = duration(e, 1, 7 * 86400, d)) out.max_run_time_s = *v;
    } else if (e.key == "no_output_timeout") {
      if (auto v = duration(e, 1, 86400, d)) out.no_output_timeout_s = *v;
    } else if (e.key == "open_files") {
      if (auto v = yaml::get_uint(e, 64, 1048576, d)) out.open_files = *v;
    } else if (e.key == "file_size") {
      if (auto v = size(e, MiB, 64 * TiB, d)) out.file_size_bytes = *v;
    } else {
      unknown(d, e, "in `resources`", "memory, pids, cpus, max_run_time, no_output_timeout, open_files, file_size");
    }
  }
}

std::string syscall_problem(const std::string& name, bool allowing) {
  if (name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
      }) || seccomp_syscall_resolve_name(name.c_str()) == __NR_SCMP_ERROR)
    return "is not a system call libseccomp knows";
  if (const SyscallNote* n = allowing ? seccomp_never_allowed(name) : nullptr)
    return "cannot be allowed by policy: " + std::string(n->why);
  return {};
}

// A name on both sides of a pair of lists, reported at the side this
// profile writes (both inherited: the parent reported it).
void overlap(const std::vector<std::string>& a, const std::string& a_key, const std::vector<std::string>& b,
             const std::string& b_key, const std::string& message, const std::string& allowed, Ctx& c) {
  const std::unordered_set<std::string> in_b(b.begin(), b.end());  // lists of 1000 in 1000 profiles
  for (const auto& name : a) {
    if (!in_b.count(name)) continue;
    const Mark* m = c.at(a_key + ":" + name);
    if (!m) m = c.at(b_key + ":" + name);
    if (!m && c.at(a_key)) m = c.at(a_key);
    if (!m && c.at(b_key)) m = c.at(b_key);
    if (m) c.d.error(*m, "`" + name + "` " + message, allowed);
  }
}

void parse_seccomp(const Entry& s, SeccompChanges& out, Ctx& c) {
  if (!yaml::expect_map(s, c.d)) return;
  for (const auto& e : yaml::entries(s.value, c.d)) {
    if (e.key == "allow" || e.key == "deny") {
      const bool allowing = e.key == "allow";
      string_list(e, "seccomp." + e.key, kMaxSyscalls, allowing ? out.allow : out.deny, c,
                  allowing ? "system call names libseccomp knows, not on the never-allowed list (docs/policy.md)"
                           : "system call names libseccomp knows",
                  [allowing](const std::string& n) { return syscall_problem(n, allowing); });
    } else {
      unknown(c.d, e, "in `seccomp`", "allow, deny");
    }
  }
  overlap(out.allow, "seccomp.allow", out.deny, "seccomp.deny", "is in both `allow` and `deny` of `seccomp`",
          "each system call in one list", c);
}

std::string env_name_problem(const std::string& s) {
  return valid_env_name(s) ? "" : "is not a valid environment variable name";
}

void parse_environment(const Entry& en, Environment& out, Ctx& c) {
  if (!yaml::expect_map(en, c.d)) return;
  const std::string names = "names of letters, digits and _, not starting with a digit";
  for (const auto& e : yaml::entries(en.value, c.d)) {
    if (e.key == "set") {
      if (!yaml::expect_map(e, c.d)) continue;
      c.note("environment.set", e.mark);
      out.set.clear();
      for (const auto& v : yaml::entries(e.value, c.d)) {
        if (!valid_env_name(v.key)) {
          c.d.error(v.mark, "environment variable name " + yaml::describe(YAML::Node(v.key)) + " is not valid", names);
          continue;
        }
        if (out.set.size() >= kMaxEnv) {
          c.d.error(v.mark, "more than " + std::to_string(kMaxEnv) + " variables in `set`", "at most 1000");
          break;
        }
        if (auto s = yaml::get_string(v.value, "environment variable `" + v.key + "`", c.d, yaml::Text::MultiLine, v.mark)) {
          out.set.emplace_back(v.key, *s);
          c.note("environment.set:" + v.key, v.mark);
        }
      }
    } else if (e.key == "pass" || e.key == "deny") {
      const bool pass = e.key == "pass";
      string_list(e, "environment." + e.key, kMaxEnv, pass ? out.pass : out.deny, c, names, [pass](const std::string& s) {
        if (!valid_env_name(s)) return env_name_problem(s);
        if (pass && s.rfind("GATEHOUSE_", 0) == 0) return std::string("would hand the agent's own settings (and credentials) to jobs");
        return std::string();
      });
    } else {
      unknown(c.d, e, "in `environment`", "set, pass, deny");
    }
  }
  std::vector<std::string> set_names;
  for (const auto& [k, v] : out.set) set_names.push_back(k);
  const std::string fix = "a name in `deny` or in `set`/`pass`, not both";
  overlap(out.deny, "environment.deny", set_names, "environment.set", "is both denied and set in `environment`", fix, c);
  overlap(out.deny, "environment.deny", out.pass, "environment.pass", "is both denied and passed in `environment`", fix, c);
}

void parse_secret(const YAML::Node& item, std::vector<SecretExposure>& out, Ctx& c) {
  const Mark at = yaml::to_mark(item.Mark());
  if (!yaml::expect_map(item, "a secret", c.d)) return;
  SecretExposure s;
  s.mark = at;
  bool ok = true, has_name = false, has_target = false;
  const std::string plain = "1 to 64 of letters, digits, _, - and ., not starting with .";
  for (const auto& e : yaml::entries(item, c.d)) {
    auto v = e.key == "name" || e.key == "env" || e.key == "file" ? yaml::get_string(e, c.d) : std::nullopt;
    const Mark vm = yaml::value_mark(e.value, e.mark);
    if (e.key == "name") {
      has_name = true;
      if (v && !valid_secret_name(*v)) c.d.error(vm, "secret name " + yaml::describe(e.value) + " is not valid", plain);
      if (v && valid_secret_name(*v)) s.name = *v;
      else ok = false;
      if (v && std::any_of(out.begin(), out.end(), [&](const SecretExposure& o) { return o.name == *v; })) {
        c.d.error(vm, "secret `" + *v + "` is exposed twice in this profile", "each secret once");
        ok = false;
      }
    } else if (e.key == "env" || e.key == "file") {
      if (has_target) {
        c.d.error(e.mark, "a secret is exposed as `env` or as `file`, not both", "one of env, file");
        ok = false;
        continue;
      }
      has_target = true;
      const bool env = e.key == "env";
      s.as = env ? SecretExposure::As::Env : SecretExposure::As::File;
      if (!v) { ok = false; continue; }
      if (env && !valid_env_name(*v)) {
        c.d.error(vm, "`env` " + yaml::describe(e.value) + " is not a valid environment variable name",
                  "names of letters, digits and _, not starting with a digit");
        ok = false;
      } else if (env && v->rfind("GATEHOUSE_", 0) == 0) {
        c.d.error(vm, "`env` " + *v + " is reserved for gatehouse's own settings", "a name not starting with GATEHOUSE_");
        ok = false;
      } else if (!env && !valid_secret_name(*v)) {
        c.d.error(vm, "`file` " + yaml::describe(e.value) + " is not a plain file name under /run/secrets", plain);
        ok = false;
      } else if (std::any_of(out.begin(), out.end(), [&](const SecretExposure& o) { return o.as == s.as && o.target == *v; })) {
        c.d.error(vm, "`" + e.key + ": " + *v + "` is the target of two secrets in this profile", "each target once");
        ok = false;
      } else {
        s.target = *v;
        if (env) c.note("secrets.env:" + *v, vm);
      }
    } else {
      unknown(c.d, e, "in a secret", "name, env, file");
      ok = false;
    }
  }
  if (!has_name) c.d.error(at, "a secret needs a `name` (its file under secrets_dir)", "name: NAME");
  if (!has_target) c.d.error(at, "a secret needs `env: VARIABLE` or `file: NAME` (how the job sees it)", "env, file");
  if (ok && has_name && has_target) out.push_back(std::move(s));
}

void parse_secrets(const Entry& e, std::vector<SecretExposure>& out, Ctx& c) {
  if (!yaml::expect_list(e, c.d)) return;
  c.note("secrets", e.mark);
  out.clear();
  if (e.value.size() > kMaxSecrets) {
    c.d.error(e.mark, "`secrets` lists more than " + std::to_string(kMaxSecrets) + " secrets", "at most 64");
    return;
  }
  for (const auto& item : e.value) parse_secret(item, out, c);
}

// A secret's variable must not be one the environment section also sets,
// passes or removes: which value the job sees would be a guess.
void check_secret_targets(const Profile& p, Ctx& c) {
  std::vector<std::string> env_targets, set_names;
  for (const auto& s : p.secrets)
    if (s.as == SecretExposure::As::Env) env_targets.push_back(s.target);
  for (const auto& [k, v] : p.environment.set) set_names.push_back(k);
  const std::string fix = "a variable that environment.set, pass and deny do not name";
  overlap(env_targets, "secrets.env", set_names, "environment.set", "is both a secret's `env` and set in `environment`", fix, c);
  overlap(env_targets, "secrets.env", p.environment.pass, "environment.pass", "is both a secret's `env` and passed in `environment`", fix, c);
  overlap(env_targets, "secrets.env", p.environment.deny, "environment.deny", "is both a secret's `env` and denied in `environment`", fix, c);
}

// `machine`: the images and resource classes jobs may name. Each list
// written replaces the parent's; its mark is where the broker's refusals
// send the operator.
void parse_machine(const Entry& m, Machine& out, Ctx& c) {
  if (!yaml::expect_map(m, c.d)) return;
  const std::string allowed =
      "CircleCI names or globs of them (`*` within a `/`-separated part, `**` across, `?` one character): "
      "1 to 128 of A-Z a-z 0-9 . _ - + : / * ?";
  for (const auto& e : yaml::entries(m.value, c.d)) {
    if (e.key == "images" || e.key == "resource_classes") {
      const bool images = e.key == "images";
      std::vector<std::string>& list = images ? out.images : out.resource_classes;
      string_list(e, "machine." + e.key, kMaxMachinePatterns, list, c, allowed, machine_pattern_problem);
      (images ? out.images_mark : out.resource_classes_mark) = e.mark;
    } else {
      unknown(c.d, e, "in `machine`", "images, resource_classes");
    }
  }
}

}  // namespace

namespace detail {

std::optional<std::string> abs_path(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null) {
  auto s = yaml::get_string(n, what, d, yaml::Text::SingleLine, if_null);
  if (!s) return s;
  const std::string why = path_problem(*s);
  if (why.empty()) return s;
  d.error(yaml::value_mark(n, if_null), what + " " + yaml::describe(n) + " " + why,
          "an absolute path in normal form (no //, ., .. or trailing /)");
  return std::nullopt;
}

void apply_profile(const std::vector<yaml::Entry>& body, const std::string& parent, Profile& base, Diagnostics& d) {
  Ctx c{d, parent, {}};
  for (const auto& e : body) {
    if (e.key == "extends") continue;
    if (e.key == "user") parse_user(e, base.user, c);
    else if (e.key == "uid_pool") parse_uid_pool(e, base.uid_pool, c);
    else if (e.key == "filesystem") parse_filesystem(e, base.filesystem, c);
    else if (e.key == "network") parse_network(e, base.network, c);
    else if (e.key == "docker") parse_docker(e, base.docker, c);
    else if (e.key == "resources") parse_resources(e, base.resources, d);
    else if (e.key == "seccomp") parse_seccomp(e, base.seccomp, c);
    else if (e.key == "environment") parse_environment(e, base.environment, c);
    else if (e.key == "secrets") parse_secrets(e, base.secrets, c);
    else if (e.key == "machine") parse_machine(e, base.machine, c);
    else unknown(d, e, "in profile `" + yaml::printable(base.name) + "`", kProfileKeys);
  }
  check_secret_targets(base, c);
}

}  // namespace detail

}  // namespace gh::policy
