// The agent's configuration file and runner token (docs/agent.md).
//
// One table lists every key: where it lives, what is allowed, and how its
// text is applied. The file and the GATEHOUSE_* variables both go through
// it, so a value means the same whether it was written in YAML or exported
// by a unit file, and no key can be added to one path and forgotten in the
// other.
#include "agent/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/protocol.hpp"
#include "common/yaml_util.hpp"
#include "policy/profile.hpp"
#include "policy/profile_parse.hpp"

namespace gh::agent {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20, kTiB = uint64_t{1} << 40;
constexpr int64_t kMaxDuration = 30 * 86400;
constexpr const char* kPathAllowed = "an absolute path in normal form (no //, ., .. or trailing /)";

std::string shown(std::string_view s) {
  std::string p = yaml::printable(s.substr(0, 80));
  return "`" + p + (s.size() > 80 ? "...`" : "`");
}

std::string path_into(const std::string& t, std::string& out) {
  if (std::string why = policy::detail::path_problem(t); !why.empty()) return shown(t) + " " + why;
  out = t;
  return "";
}

// Optional paths: "" unsets (an environment variable can only say "none" so).
std::string opt_path_into(const std::string& t, std::string& out) {
  if (t.empty()) {
    out.clear();
    return "";
  }
  return path_into(t, out);
}

std::string size_into(const std::string& t, uint64_t min, uint64_t max, uint64_t& out) {
  auto v = policy::parse_size(t);
  if (!v) return shown(t) + " is not a size";
  if (*v < min || *v > max) return shown(t) + " is out of range";
  out = *v;
  return "";
}

std::string duration_into(const std::string& t, int64_t min, int64_t max, int64_t& out) {
  auto v = policy::parse_duration_seconds(t);
  if (!v) return shown(t) + " is not a duration";
  if (*v < static_cast<uint64_t>(min) || *v > static_cast<uint64_t>(max)) return shown(t) + " is out of range";
  out = static_cast<int64_t>(*v);
  return "";
}

std::string bool_into(const std::string& t, bool& out) {
  std::string v;
  for (char c : t) v += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (v == "true" || v == "yes" || v == "on" || v == "1") out = true;
  else if (v == "false" || v == "no" || v == "off" || v == "0") out = false;
  else return shown(t) + " is not true or false";
  return "";
}

std::string whole_into(const std::string& t, uint32_t min, uint32_t max, uint32_t& out) {
  if (t.empty() || t.size() > 3 || t.find_first_not_of("0123456789") != std::string::npos)
    return shown(t) + " is not a whole number";
  const auto v = static_cast<uint32_t>(std::stoul(t));
  if (v < min || v > max) return shown(t) + " is out of range";
  out = v;
  return "";
}

std::string slots_into(const std::string& t, int& out) {
  uint32_t v = 0;
  if (std::string why = whole_into(t, 1, protocol::kMaxFreeSlots, v); !why.empty()) return why;
  out = static_cast<int>(v);
  return "";
}

struct Key {
  const char* section;  // "" for a top-level key
  const char* name;
  const char* allowed;
  std::string (*apply)(const std::string& text, AgentConfig& c);  // "" when fine, else the problem
};

const Key kKeys[] = {
    {"api", "url", "an https:// URL, e.g. https://ci.example.com",
     [](const std::string& t, AgentConfig& c) {
       if (std::string why = api_url_problem(t); !why.empty()) return shown(t) + " " + why;
       c.api.url = t;
       while (c.api.url.size() > 8 && c.api.url.back() == '/') c.api.url.pop_back();
       return std::string();
     }},
    {"api", "auth_token_file", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return opt_path_into(t, c.api.auth_token_file); }},
    {"api", "ca_file", kPathAllowed, [](const std::string& t, AgentConfig& c) { return opt_path_into(t, c.api.ca_file); }},
    {"api", "client_cert", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return opt_path_into(t, c.api.client_cert); }},
    {"api", "client_key", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return opt_path_into(t, c.api.client_key); }},
    {"api", "pinned_public_key", "sha256//BASE64 of the server's public key (44 characters), several joined by ;",
     [](const std::string& t, AgentConfig& c) {
       if (std::string why = pinned_key_problem(t); !t.empty() && !why.empty()) return shown(t) + " " + why;
       c.api.pinned_public_key = t;
       return std::string();
     }},
    {"runner", "name", "1 to 128 characters from A-Z a-z 0-9 . _ -",
     [](const std::string& t, AgentConfig& c) {
       if (std::string why = protocol::runner_name_problem(t); !why.empty()) return shown(t) + " " + why;
       c.runner.name = t;
       return std::string();
     }},
    {"runner", "resource_class", "1 to 128 characters from A-Z a-z 0-9 . _ / -, e.g. acme/linux",
     [](const std::string& t, AgentConfig& c) {
       if (std::string why = protocol::resource_class_problem(t); !why.empty()) return shown(t) + " " + why;
       c.runner.resource_class = t;
       return std::string();
     }},
    {"runner", "working_directory", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return path_into(t, c.runner.working_directory); }},
    {"runner", "cleanup_working_directory", "true or false",
     [](const std::string& t, AgentConfig& c) { return bool_into(t, c.runner.cleanup_working_directory); }},
    {"runner", "mode", "continuous or single-task",
     [](const std::string& t, AgentConfig& c) {
       if (t == "continuous") c.runner.mode = RunnerMode::Continuous;
       else if (t == "single-task") c.runner.mode = RunnerMode::SingleTask;
       else return shown(t) + " is not a mode";
       return std::string();
     }},
    {"runner", "max_run_time", "a duration from 1s to 30d, e.g. 30m, 5h, 1h30m",
     [](const std::string& t, AgentConfig& c) { return duration_into(t, 1, kMaxDuration, c.runner.max_run_time_s); }},
    {"runner", "idle_timeout", "a duration up to 30d, e.g. 10m; 0 = never",
     [](const std::string& t, AgentConfig& c) { return duration_into(t, 0, kMaxDuration, c.runner.idle_timeout_s); }},
    {"runner", "slots", "a whole number from 1 to 64",
     [](const std::string& t, AgentConfig& c) { return slots_into(t, c.runner.slots); }},
    {"runner", "spool_directory", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return path_into(t, c.runner.spool_directory); }},
    {"runner", "spool_limit", "a size from 1M to 1T: digits with K, M, G or T (powers of 1024), e.g. 256M",
     [](const std::string& t, AgentConfig& c) { return size_into(t, kMiB, kTiB, c.runner.spool_limit); }},
    {"runner", "min_free_space", "a size up to 1024T: digits with K, M, G or T (powers of 1024), e.g. 1G",
     [](const std::string& t, AgentConfig& c) { return size_into(t, 0, 1024 * kTiB, c.runner.min_free_space); }},
    {"runner", "uid_lock_directory", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return path_into(t, c.runner.uid_lock_directory); }},
    {"runner", "orb_directory", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return path_into(t, c.runner.orb_directory); }},
    {"runner", "drain_grace", "a duration up to 24h, e.g. 5m, 1h; 0 cancels running tasks at the first SIGTERM",
     [](const std::string& t, AgentConfig& c) { return duration_into(t, 0, 86400, c.runner.drain_grace_s); }},
    {"runner", "lock_directory", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return path_into(t, c.runner.lock_directory); }},
    {"runner.uid_slice", "index", "a whole number from 0 to runner.uid_slice.count - 1",
     [](const std::string& t, AgentConfig& c) { return whole_into(t, 0, kMaxUidSlices - 1, c.runner.uid_slice_index); }},
    {"runner.uid_slice", "count", "a whole number from 1 to 64: how many agents on this host share the uid pools",
     [](const std::string& t, AgentConfig& c) { return whole_into(t, 1, kMaxUidSlices, c.runner.uid_slice_count); }},
    {"", "policy", kPathAllowed,
     [](const std::string& t, AgentConfig& c) {
       c.policy_set = true;
       return path_into(t, c.policy);
     }},
    {"logging", "level", "debug, info, warn or error",
     [](const std::string& t, AgentConfig& c) {
       if (t != "debug" && t != "info" && t != "warn" && t != "error") return shown(t) + " is not a log level";
       c.logging.level = t;
       return std::string();
     }},
    {"logging", "file", kPathAllowed,
     [](const std::string& t, AgentConfig& c) { return opt_path_into(t, c.logging.file); }},
    {"metrics", "listen", "unix:/ABSOLUTE/PATH, 127.0.0.1:PORT or [::1]:PORT (loopback only)",
     [](const std::string& t, AgentConfig& c) {
       if (std::string why = listen_problem(t); !t.empty() && !why.empty()) return shown(t) + " " + why;
       c.metrics_listen = t;
       return std::string();
     }},
};

constexpr const char* kSections[] = {"api", "runner", "logging", "metrics"};
// Maps inside a section, named "section.name"; their keys are in kKeys.
constexpr const char* kSubsections[] = {"runner.uid_slice"};

bool is_subsection(std::string_view dotted_name) {
  for (const char* s : kSubsections)
    if (dotted_name == s) return true;
  return false;
}

std::string dotted(const Key& k) { return *k.section ? std::string(k.section) + "." + k.name : std::string(k.name); }

std::string env_name(const Key& k) {
  std::string n = "GATEHOUSE_";
  for (char c : dotted(k)) n += c == '.' ? '_' : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return n;
}

std::string keys_of(std::string_view section) {
  std::vector<std::string> names;
  for (const auto& k : kKeys)
    if (section == k.section) names.push_back(k.name);
  for (std::string_view sub : kSubsections)
    if (sub.size() > section.size() && sub.starts_with(section) && sub[section.size()] == '.')
      names.emplace_back(sub.substr(section.size() + 1));
  return yaml::join(names);
}

const Key* find_key(std::string_view section, std::string_view name) {
  for (const auto& k : kKeys)
    if (section == k.section && name == k.name) return &k;
  return nullptr;
}

struct Parse {
  AgentConfig cfg;
  Diagnostics& d;
  std::map<std::string, Mark> where;  // dotted key -> where the file sets it
  std::set<std::string> set;          // dotted keys the file or the environment set
};

void apply_entry(Parse& p, const Key& k, const yaml::Entry& e) {
  auto s = yaml::get_string(e.value, "`" + dotted(k) + "`", p.d, yaml::Text::SingleLine, e.mark);
  if (!s) return;
  p.where[dotted(k)] = e.mark;
  p.set.insert(dotted(k));
  if (std::string why = k.apply(*s, p.cfg); !why.empty())
    p.d.error(yaml::value_mark(e.value, e.mark), "`" + dotted(k) + "`: " + why, k.allowed);
}

// The entries of a section (or of a map inside one, e.g. runner.uid_slice).
void parse_section(Parse& p, const std::string& section, const yaml::Entry& e) {
  if (!yaml::expect_map(e, p.d)) return;
  p.where[section] = e.mark;
  for (const auto& sub : yaml::entries(e.value, p.d)) {
    const std::string inner = section + "." + sub.key;
    if (const Key* k = find_key(section, sub.key)) apply_entry(p, *k, sub);
    else if (is_subsection(inner)) parse_section(p, inner, sub);
    else p.d.error(sub.mark, "unknown key " + yaml::describe(YAML::Node(sub.key)) + " in `" + section + "`", keys_of(section));
  }
}

void parse_file(Parse& p, const std::string& text) {
  if (text.size() > kMaxAgentConfigBytes) {
    p.d.error({}, "the agent config is " + std::to_string(text.size()) + " bytes, more than the limit of 64 KiB",
              "a config of at most 64 KiB");
    return;
  }
  // A file of only comments is allowed: everything may come from the environment.
  bool only_comments = true;
  for (size_t i = 0; i < text.size() && only_comments;) {
    const size_t start = text.find_first_not_of(" \t\r\n", i);
    if (start == std::string::npos) break;
    only_comments = text[start] == '#';
    i = text.find('\n', start);
    if (i == std::string::npos) break;
  }
  if (only_comments) return;
  auto root = yaml::load(text, p.d);
  if (!root || root->IsNull()) return;
  if (!yaml::expect_map(*root, "the top level of the agent config", p.d, {1, 1})) return;
  for (const auto& e : yaml::entries(*root, p.d)) {
    if (const Key* k = find_key("", e.key)) {
      apply_entry(p, *k, e);
      continue;
    }
    bool is_section = false;
    for (const char* s : kSections) is_section |= e.key == s;
    if (!is_section) {
      p.d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " at the top level",
                "api, runner, policy, logging, metrics");
      continue;
    }
    parse_section(p, e.key, e);
  }
}

// Only the config's own prefixes are checked for typos: other GATEHOUSE_*
// variables (GATEHOUSE_CONFIG, GATEHOUSE_AUDIT_LOG) belong to the command line.
void apply_env(Parse& p, const std::map<std::string, std::string>& env) {
  for (const auto& [var, value] : env) {
    if (var.rfind("GATEHOUSE_", 0) != 0) continue;
    const Key* key = nullptr;
    for (const auto& k : kKeys)
      if (env_name(k) == var) key = &k;
    if (!key) {
      for (const char* s : {"GATEHOUSE_API_", "GATEHOUSE_RUNNER_", "GATEHOUSE_LOGGING_", "GATEHOUSE_METRICS_"})
        if (var.rfind(s, 0) == 0)
          p.d.error({}, "environment variable " + var + " is not a setting of the agent", "GATEHOUSE_ and a key "
                                                                                           "of docs/agent.md, e.g. "
                                                                                           "GATEHOUSE_RUNNER_SLOTS");
      continue;
    }
    bool printable = yaml::valid_utf8(value);
    for (unsigned char c : value) printable &= c >= 0x20 && c != 0x7f;
    const std::string why = printable ? key->apply(value, p.cfg) : shown(value) + " holds control characters or invalid UTF-8";
    if (!why.empty()) p.d.error({}, "environment variable " + var + " (`" + dotted(*key) + "`): " + why, key->allowed);
    else p.where.erase(dotted(*key));  // set by the environment now, not the file
    p.set.insert(dotted(*key));
  }
}

Mark mark_of(const Parse& p, const std::string& key) {
  auto it = p.where.find(key);
  return it == p.where.end() ? Mark{} : it->second;
}

bool inside(const std::string& a, const std::string& b) {
  return a == b || (a.size() > b.size() && a.compare(0, b.size(), b) == 0 && (b == "/" || a[b.size()] == '/'));
}

void check_whole(Parse& p, const std::map<std::string, std::string>& env, ConfigChecks checks) {
  const AgentConfig& c = p.cfg;
  auto need = [&](const std::string& value, const char* key, const char* var, const char* example) {
    if (value.empty())
      p.d.error(mark_of(p, std::string(key).substr(0, std::string(key).find('.'))),
                std::string("`") + key + "` is not set", std::string(example) + " in the file, or " + var);
  };
  need(c.api.url, "api.url", "GATEHOUSE_API_URL", "api: {url: https://ci.example.com}");
  need(c.runner.name, "runner.name", "GATEHOUSE_RUNNER_NAME", "runner: {name: build-host-1}");
  need(c.runner.resource_class, "runner.resource_class", "GATEHOUSE_RUNNER_RESOURCE_CLASS",
       "runner: {resource_class: acme/linux}");
  auto creds = env.find("CREDENTIALS_DIRECTORY");
  if (checks.token_source && c.api.auth_token_file.empty() && (creds == env.end() || creds->second.empty()))
    p.d.error(mark_of(p, "api"), "no runner token: `api.auth_token_file` is not set and there is no systemd credential",
              "api: {auth_token_file: /etc/gatehouse/token}, or LoadCredential=gatehouse-token:FILE in the unit");
  if (c.api.client_cert.empty() != c.api.client_key.empty()) {
    const bool cert = !c.api.client_cert.empty();
    p.d.error(mark_of(p, cert ? "api.client_cert" : "api.client_key"),
              std::string("`api.") + (cert ? "client_cert" : "client_key") + "` is set without `api." +
                  (cert ? "client_key" : "client_cert") + "`",
              "both a client certificate and its key, or neither");
  }
  // A slice is named whole: `count: 2` alone could mean either half.
  const bool index_set = p.set.count("runner.uid_slice.index") > 0, count_set = p.set.count("runner.uid_slice.count") > 0;
  if (index_set != count_set)
    p.d.error(mark_of(p, index_set ? "runner.uid_slice.index" : "runner.uid_slice.count"),
              std::string("`runner.uid_slice.") + (index_set ? "index" : "count") + "` is set without `runner.uid_slice." +
                  (index_set ? "count" : "index") + "`",
              "both, e.g. uid_slice: {index: 0, count: 2} on one agent and {index: 1, count: 2} on the other");
  else if (c.runner.uid_slice_index >= c.runner.uid_slice_count)
    p.d.error(mark_of(p, "runner.uid_slice.index"),
              "`runner.uid_slice.index` is " + std::to_string(c.runner.uid_slice_index) + ", but " +
                  std::to_string(c.runner.uid_slice_count) + " slices are numbered 0 to " +
                  std::to_string(c.runner.uid_slice_count - 1),
              "an index from 0 to runner.uid_slice.count - 1");
  const std::string& w = c.runner.working_directory;
  const std::string& s = c.runner.spool_directory;
  if (inside(w, s) || inside(s, w))
    p.d.error(mark_of(p, "runner.spool_directory"),
              "`runner.spool_directory` (" + s + ") and `runner.working_directory` (" + w + ") overlap",
              "two separate directories: jobs write under the working directory, the spool must stay apart");
}

}  // namespace

std::string pinned_key_problem(const std::string& pins) {
  if (pins.empty()) return "is empty";
  size_t start = 0;
  for (;;) {
    const size_t semi = pins.find(';', start);
    const std::string one = pins.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
    if (!one.starts_with("sha256//")) return "has an entry that does not start with sha256//";
    auto raw = protocol::base64_decode(one.substr(8), 32);
    if (!raw || raw->size() != 32) return "has an entry that is not the base64 of a 32-byte SHA-256 digest";
    if (semi == std::string::npos) return "";
    start = semi + 1;
  }
}

AgentConfigOutcome parse_agent_config(const std::string& display_path, const std::string& text,
                                      const std::map<std::string, std::string>& env, ConfigChecks checks) {
  AgentConfigOutcome out{std::nullopt, Diagnostics(display_path)};
  if (text.size() <= kMaxAgentConfigBytes) out.diagnostics.set_text(yaml::for_display(text));
  Parse p{AgentConfig{}, out.diagnostics, {}, {}};
  try {
    parse_file(p, text);
    apply_env(p, env);
    if (!out.diagnostics.has_errors()) check_whole(p, env, checks);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while reading the agent config: ") + e.what());
  }
  if (!out.diagnostics.has_errors()) out.config = std::move(p.cfg);
  return out;
}

AgentConfigOutcome load_agent_config(const std::string& path, const std::map<std::string, std::string>& env,
                                     ConfigChecks checks) {
  AgentConfigOutcome out{std::nullopt, Diagnostics(path)};
  try {
    auto text = yaml::read_file_limited(path, kMaxAgentConfigBytes, "agent config " + path, out.diagnostics);
    if (!text) return out;
    return parse_agent_config(path, *text, env, checks);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("cannot read the agent config: ") + e.what());
  }
  return out;
}

}  // namespace gh::agent
