// Policy files: `version: 1` and named sandbox profiles.
//
// An operator reads this file to know what any job may do, so it is as
// strict as the job parser: unknown keys, wrong types and dangerous values
// are errors at their line:col, every profile in the file is checked (not
// only the one asked for), and nothing is half-applied. Keys the full
// policy language will have (rules, network, docker, secrets) are reserved:
// they say "not in this build yet" instead of "unknown", and `network` and
// `docker` accept exactly the values this build enforces anyway.
#include <algorithm>
#include <exception>
#include <string>
#include <string_view>

#include "common/yaml_util.hpp"
#include "policy/profile.hpp"

namespace gh::policy {

Profile builtin_profile() { return Profile{}; }

namespace {

using yaml::Entry;
using yaml::quoted;

constexpr std::string_view kTopKeys[] = {"version", "profiles"};
constexpr std::string_view kProfileKeys[] = {"user", "uid_pool", "filesystem", "resources", "environment",
                                             "network", "docker"};
constexpr std::string_view kNotYetTop[] = {"rules", "secrets"};
constexpr std::string_view kNotYetProfile[] = {"secrets", "seccomp"};

// Host paths a job must never be able to write: the system itself, the
// kernel's views, and gatehouse's own state. An ancestor of one of these is
// as bad (a writable /var holds /var/lib/gatehouse).
constexpr std::string_view kProtected[] = {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                                           "/boot", "/proc", "/sys", "/dev", "/root", "/run", "/var/run",
                                           "/var/lib/gatehouse", "/etc/gatehouse"};

constexpr size_t kMaxPaths = 256;
constexpr size_t kMaxEnv = 1000;
constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;

template <size_t N>
std::string allowed(const std::string_view (&keys)[N]) {
  return yaml::join(std::vector<std::string>(keys, keys + N));
}
template <size_t N>
bool known(const std::string_view (&keys)[N], const std::string& k) {
  return std::find(keys, keys + N, std::string_view(k)) != keys + N;
}

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

std::optional<uint64_t> size(const Entry& e, uint64_t min, uint64_t max, Diagnostics& d) {
  auto s = yaml::get_string(e, d);
  if (!s) return std::nullopt;
  const std::string range = human_size(min) + " to " + human_size(max);
  auto v = parse_size(*s);
  if (!v || *v < min || *v > max) {
    d.error(yaml::value_mark(e.value, e.mark),
            quoted(e.key) + (v ? " " + *s + " is out of range" : " " + yaml::describe(e.value) + " is not a size"),
            "a size from " + range + ": digits with K, M, G or T (powers of 1024), e.g. 512M, 2G");
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

// Empty when p is an absolute path in normal form, else what is wrong.
std::string path_problem(const std::string& p) {
  if (p.empty() || p[0] != '/') return "is not an absolute path";
  if (p.size() > 4095) return "is longer than 4095 bytes";
  if (p.size() > 1 && p.back() == '/') return "ends in `/`";
  for (size_t i = 1; i <= p.size();) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    const std::string_view part(p.data() + i, j - i);
    if (part.empty() && p.size() > 1) return "has an empty component (`//`)";
    if (part == "." || part == "..") return "has a `" + std::string(part) + "` component";
    i = j + 1;
  }
  return {};
}

bool under(std::string_view p, std::string_view dir) {
  return p.size() > dir.size() && p.substr(0, dir.size()) == dir && p[dir.size()] == '/';
}

// The protected directory p is, is inside of, or holds; empty if none.
std::string_view touches_protected(const std::string& p) {
  if (p == "/") return "/";
  for (auto prot : kProtected)
    if (p == prot || under(p, prot) || under(prot, p)) return prot;
  return {};
}

std::optional<std::string> abs_path(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null) {
  auto s = yaml::get_string(n, what, d, yaml::Text::SingleLine, if_null);
  if (!s) return s;
  const std::string why = path_problem(*s);
  if (why.empty()) return s;
  d.error(yaml::value_mark(n, if_null), what + " " + yaml::describe(n) + " " + why,
          "an absolute path in normal form (no //, ., .. or trailing /)");
  return std::nullopt;
}

bool valid_env_name(const std::string& s) {
  if (s.empty() || s.size() > 256 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool valid_user_name(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

void parse_user(const Entry& u, JobUser& out, Diagnostics& d) {
  if (!yaml::expect_map(u, d)) return;
  for (const auto& e : yaml::entries(u.value, d)) {
    if (e.key == "name") {
      auto v = yaml::get_string(e, d);
      if (!v) continue;
      if (!valid_user_name(*v) || *v == "root")
        d.error(yaml::value_mark(e.value, e.mark), "user name " + yaml::describe(e.value) + " is not allowed",
                "1 to 32 of a-z, 0-9, _ and -, starting with a letter or _; not root");
      else out.name = *v;
    } else if (e.key == "uid" || e.key == "gid") {
      // Ids inside the job's user namespace: 0 would be root there, and
      // 65534 is the overflow id unmapped files show up as.
      if (auto v = yaml::get_uint(e, 1, 65533, d)) (e.key == "uid" ? out.uid : out.gid) = static_cast<uint32_t>(*v);
    } else if (e.key == "home") {
      auto v = abs_path(e.value, "`home`", d, e.mark);
      if (!v) continue;
      if (auto p = touches_protected(*v); !p.empty())
        d.error(yaml::value_mark(e.value, e.mark), "`home` " + *v + " would be mounted over " + std::string(p),
                "a directory such as /home/circleci");
      else out.home = *v;
    } else {
      unknown(d, e, "in `user`", "name, uid, gid, home");
    }
  }
}

void parse_uid_pool(const Entry& u, UidPool& out, Diagnostics& d) {
  if (!yaml::expect_map(u, d)) return;
  std::optional<uint64_t> first, count;
  Mark first_mark = u.mark;
  for (const auto& e : yaml::entries(u.value, d)) {
    if (e.key == "first") {
      first = yaml::get_uint(e, 0, 4294967295u, d);
      first_mark = yaml::value_mark(e.value, e.mark);
    } else if (e.key == "count") {
      count = yaml::get_uint(e, 1, 65536, d);
    } else {
      unknown(d, e, "in `uid_pool`", "first, count");
    }
  }
  const uint64_t f = first.value_or(out.first), n = count.value_or(out.count);
  if (first && f == 0) {
    d.error(first_mark, "the uid pool includes uid 0 (root on the host)", "first: 1000 or more");
  } else if (first && f < 1000) {
    d.error(first_mark, "the uid pool starts at " + std::to_string(f) + ", among the host's system users (below 1000)",
            "first: 1000 or more");
  } else if (f + n - 1 > 4294967294u) {
    d.error(first_mark, "the uid pool runs past uid 4294967294 (uid 4294967295 means \"no uid\")",
            "first + count - 1 at most 4294967294");
  } else {
    out.first = static_cast<uint32_t>(f);
    out.count = static_cast<uint32_t>(n);
  }
}

void parse_paths(const Entry& e, std::vector<std::string>& out, bool writable, bool hide, Diagnostics& d) {
  if (!yaml::expect_list(e, d)) return;
  if (e.value.size() > kMaxPaths) {
    d.error(e.mark, quoted(e.key) + " lists more than " + std::to_string(kMaxPaths) + " paths",
            "at most " + std::to_string(kMaxPaths));
    return;
  }
  for (const auto& item : e.value) {
    auto p = abs_path(item, "a path in " + quoted(e.key), d, {});
    if (!p) continue;
    const Mark at = yaml::to_mark(item.Mark());
    if (std::find(out.begin(), out.end(), *p) != out.end()) {
      d.error(at, *p + " is listed twice in " + quoted(e.key), "each path once");
    } else if (hide && *p == "/") {
      d.error(at, "`hidden` cannot hide the whole file system", "paths below /");
    } else if (auto prot = writable ? touches_protected(*p) : std::string_view(); !prot.empty()) {
      d.error(at, *p == prot ? "`read_write` of " + *p + " would let jobs rewrite the host"
                             : "`read_write` of " + *p + " would let jobs write " + std::string(prot),
              "writable paths outside /, /etc, /usr, /bin, /lib*, /boot, /proc, /sys, /dev, /root, /run and "
              "gatehouse's own state");
    } else {
      out.push_back(*p);
    }
  }
}

void parse_filesystem(const Entry& f, Filesystem& out, Diagnostics& d) {
  if (!yaml::expect_map(f, d)) return;
  for (const auto& e : yaml::entries(f.value, d)) {
    if (e.key == "read_only") {
      out.read_only.clear();
      parse_paths(e, out.read_only, false, false, d);
    } else if (e.key == "read_write") {
      out.read_write.clear();
      parse_paths(e, out.read_write, true, false, d);
    } else if (e.key == "hidden") {
      out.hidden.clear();
      parse_paths(e, out.hidden, false, true, d);
    } else if (e.key == "tmp_size") {
      if (auto v = size(e, MiB, TiB, d)) out.tmp_bytes = *v;
    } else if (e.key == "home_size") {
      if (auto v = size(e, MiB, TiB, d)) out.home_bytes = *v;
    } else {
      unknown(d, e, "in `filesystem`", "read_only, read_write, hidden, tmp_size, home_size");
    }
  }
}

void parse_resources(const Entry& r, Resources& out, Diagnostics& d) {
  if (!yaml::expect_map(r, d)) return;
  for (const auto& e : yaml::entries(r.value, d)) {
    if (e.key == "memory") {
      if (auto v = size(e, 32 * MiB, 16 * TiB, d)) out.memory_bytes = *v;
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
      unknown(d, e, "in `resources`",
              "memory, pids, cpus, max_run_time, no_output_timeout, open_files, file_size");
    }
  }
}

bool env_name_ok(const std::string& name, Mark at, Diagnostics& d) {
  if (!valid_env_name(name)) {
    d.error(at, "environment variable name " + yaml::describe(YAML::Node(name)) + " is not valid",
            "names of letters, digits and _, not starting with a digit");
    return false;
  }
  return true;
}

void parse_environment(const Entry& en, Environment& out, Diagnostics& d) {
  if (!yaml::expect_map(en, d)) return;
  for (const auto& e : yaml::entries(en.value, d)) {
    if (e.key == "set") {
      if (!yaml::expect_map(e, d)) continue;
      out.set.clear();
      for (const auto& v : yaml::entries(e.value, d)) {
        if (!env_name_ok(v.key, v.mark, d)) continue;
        if (out.set.size() >= kMaxEnv) {
          d.error(v.mark, "more than " + std::to_string(kMaxEnv) + " variables in `set`", "at most 1000");
          break;
        }
        if (auto s = yaml::get_string(v.value, "environment variable `" + v.key + "`", d, yaml::Text::MultiLine, v.mark))
          out.set.emplace_back(v.key, *s);
      }
    } else if (e.key == "pass") {
      if (!yaml::expect_list(e, d)) continue;
      out.pass.clear();
      for (const auto& item : e.value) {
        auto s = yaml::get_string(item, "a name in `pass`", d);
        const Mark at = yaml::to_mark(item.Mark());
        if (!s || !env_name_ok(*s, at, d)) continue;
        if (s->rfind("GATEHOUSE_", 0) == 0) {
          d.error(at, "`pass` of " + *s + " would hand the agent's own settings (and credentials) to jobs",
                  "names that do not start with GATEHOUSE_");
        } else if (out.pass.size() >= kMaxEnv) {
          d.error(at, "more than " + std::to_string(kMaxEnv) + " names in `pass`", "at most 1000");
          break;
        } else if (std::find(out.pass.begin(), out.pass.end(), *s) == out.pass.end()) {
          out.pass.push_back(*s);
        }
      }
    } else {
      unknown(d, e, "in `environment`", "set, pass");
    }
  }
}

// The full policy language grows these; this build enforces only the
// secure default, so that is the only value it may claim to run.
void parse_reserved_mode(const Entry& e, std::string_view only, const std::string& needs, Diagnostics& d) {
  auto v = yaml::get_string(e, d);
  if (!v || *v == only) return;
  d.error(yaml::value_mark(e.value, e.mark), quoted(e.key) + " " + yaml::describe(e.value) + " " + needs,
          std::string(only));
}

Profile parse_profile(const Entry& p, Diagnostics& d) {
  Profile out = builtin_profile();
  out.name = p.key;
  if (p.value.IsNull()) return out;
  const std::string shown = yaml::printable(p.key);
  if (!yaml::expect_map(p.value, "profile `" + shown + "`", d, p.mark)) return out;
  for (const auto& e : yaml::entries(p.value, d)) {
    if (e.key == "user") parse_user(e, out.user, d);
    else if (e.key == "uid_pool") parse_uid_pool(e, out.uid_pool, d);
    else if (e.key == "filesystem") parse_filesystem(e, out.filesystem, d);
    else if (e.key == "resources") parse_resources(e, out.resources, d);
    else if (e.key == "environment") parse_environment(e, out.environment, d);
    else if (e.key == "network")
      parse_reserved_mode(e, "none", "needs network enforcement that this build does not have", d);
    else if (e.key == "docker")
      parse_reserved_mode(e, "deny", "needs the docker proxy and network enforcement that this build does not have", d);
    else if (known(kNotYetProfile, e.key))
      d.error(e.mark, quoted(e.key) + " in a profile is not in this build yet", allowed(kProfileKeys));
    else unknown(d, e, "in profile `" + shown + "`", allowed(kProfileKeys));
  }
  return out;
}

bool valid_profile_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

void parse_into(PolicyOutcome& out, const std::string& text, const std::string& want) {
  Diagnostics& d = out.diagnostics;
  if (text.size() > kMaxPolicyFileBytes) {
    d.error({}, "the policy file is " + std::to_string(text.size()) + " bytes, more than the limit of " +
            std::to_string(kMaxPolicyFileBytes / 1024) + " KiB", "policy files of at most 1 MiB");
    return;
  }
  auto root = yaml::load(text, d);
  if (!root) return;
  if (!yaml::expect_map(*root, "the top level of a policy file", d, {1, 1})) return;
  bool has_version = false;
  std::optional<Entry> profiles;
  for (const auto& e : yaml::entries(*root, d)) {
    if (e.key == "version") {
      has_version = true;
      auto v = yaml::get_string(e, d);
      if (v && *v != "1")
        d.error(yaml::value_mark(e.value, e.mark), "policy version " + yaml::describe(e.value) +
                " is not supported by this build", "version: 1");
    } else if (e.key == "profiles") {
      profiles = e;
    } else if (known(kNotYetTop, e.key)) {
      d.error(e.mark, quoted(e.key) + " is not in this build yet", allowed(kTopKeys));
    } else {
      unknown(d, e, "at the top level", allowed(kTopKeys));
    }
  }
  if (!has_version) d.error(yaml::to_mark(root->Mark()), "the policy file has no `version:`", "version: 1");
  if (!profiles) {
    d.error(yaml::to_mark(root->Mark()), "the policy file has no `profiles:`", "profiles: NAME: {...}");
    return;
  }
  if (!yaml::expect_map(*profiles, d)) return;
  std::optional<Profile> picked;
  for (const auto& p : yaml::entries(profiles->value, d)) {
    out.profiles.push_back(yaml::printable(p.key));
    if (!valid_profile_name(p.key))
      d.error(p.mark, "profile name " + yaml::describe(YAML::Node(p.key)) + " is not valid",
              "1 to 64 of letters, digits, _, - and .");
    Profile prof = parse_profile(p, d);
    if (p.key == want) picked = std::move(prof);
  }
  if (!picked) {
    d.error(profiles->mark, "there is no profile `" + want + "` in this policy",
            out.profiles.empty() ? std::string("(it defines none)") : "one of: " + yaml::join(out.profiles));
    return;
  }
  out.profile = std::move(picked);
}

}  // namespace

PolicyOutcome parse_policy_text(const std::string& display_path, const std::string& text,
                                const std::string& profile_name) {
  PolicyOutcome out{std::nullopt, Diagnostics(display_path, yaml::for_display(text)), {}};
  try {
    parse_into(out, text, profile_name.empty() ? std::string("default") : profile_name);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while reading the policy: ") + e.what(), "");
  } catch (...) {
    out.diagnostics.error({}, "internal error while reading the policy", "");
  }
  if (out.diagnostics.has_errors()) out.profile.reset();
  return out;
}

PolicyOutcome parse_policy_file(const std::string& path, const std::string& profile_name) {
  PolicyOutcome out{std::nullopt, Diagnostics(path), {}};
  try {
    auto text = yaml::read_file_limited(path, kMaxPolicyFileBytes, "policy file " + path, out.diagnostics);
    if (!text) return out;
    return parse_policy_text(path, *text, profile_name);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("cannot read the policy file: ") + e.what(), "");
  }
  return out;
}

}  // namespace gh::policy
