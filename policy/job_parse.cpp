// Job files: the CircleCI subset this machine runner runs (docs/jobs.md).
//
// The file comes from the repository being built, so it is hostile input:
// yaml::load guards the YAML itself, and everything here is an allow-list.
// A CircleCI feature this runner does not have is refused by name at its
// line, never skipped: a job that silently loses its `save_cache` or runs
// without the container it asked for is a job that passes for the wrong
// reason. All errors are collected before returning.
#include <algorithm>
#include <cctype>
#include <exception>
#include <limits>
#include <set>
#include <string>
#include <string_view>

#include "common/yaml_util.hpp"
#include "policy/job.hpp"
#include "policy/profile.hpp"
#include "policy/workflow.hpp"

namespace gh::job {

namespace {

using yaml::Entry;
using yaml::quoted;
using yaml::Text;

constexpr std::string_view kJobKeys[] = {"steps", "environment", "working_directory", "shell", "machine",
                                         "resource_class", "parallelism", "description"};
constexpr std::string_view kTopKeys[] = {"version", "jobs", "workflows", "orbs", "commands",
                                         "executors", "parameters", "setup"};
constexpr std::string_view kRunKeys[] = {"name", "command", "environment", "working_directory",
                                         "no_output_timeout", "when", "shell", "background"};

struct Refusal {
  std::string_view key;
  std::string_view reason;  // follows "step `key` "
};
constexpr Refusal kRefusedSteps[] = {
    {"save_cache", "is not supported by this runner yet: caches need the storage service, which this build does not have"},
    {"restore_cache", "is not supported by this runner yet: caches need the storage service, which this build does not have"},
    {"persist_to_workspace", "is not supported by this runner yet: workspaces need the storage service, which this build does not have"},
    {"attach_workspace", "is not supported by this runner yet: workspaces need the storage service, which this build does not have"},
    {"store_artifacts", "is not supported by this runner yet: artifacts need the storage service, which this build does not have"},
    {"store_test_results", "is not supported by this runner yet: test results need the storage service, which this build does not have"},
    {"add_ssh_keys", "is refused: this runner does not hand SSH keys to jobs (secrets are not in this build)"},
    {"setup_remote_docker", "is refused: jobs on this runner get no docker, remote or local (the policy's `docker: deny`)"},
    {"deploy", "is not supported: CircleCI deprecated it; use a `run` step"},
    {"when", "is not supported: conditional steps are decided by pipeline parameters, and this runner does no templating"},
    {"unless", "is not supported: conditional steps are decided by pipeline parameters, and this runner does no templating"},
};
constexpr Refusal kRefusedJobKeys[] = {
    {"docker", "`docker:` executor is refused: Gatehouse is a machine runner and runs jobs on this host, not in "
               "containers; use `machine: true` or leave the executor out"},
    {"macos", "`macos:` executor is refused: this runner runs jobs on this Linux host"},
    {"windows", "`windows:` executor is refused: this runner runs jobs on this Linux host"},
    {"executor", "`executor:` is refused: named executors are docker/machine/macos definitions expanded by "
                 "templating; this runner runs the job on this host (use `machine: true`)"},
    {"circleci_ip_ranges", "`circleci_ip_ranges` is refused: jobs on this runner have no network unless the policy "
                           "grants it, and never CircleCI's IP ranges"},
    {"parameters", "job `parameters:` are refused: they need templating (`<< parameters.name >>`), which this "
                   "runner does not do"},
};

std::string allowed(const std::string_view* b, const std::string_view* e) {
  std::vector<std::string> v(b, e);
  return yaml::join(v);
}
template <size_t N>
std::string allowed(const std::string_view (&keys)[N]) {
  return allowed(keys, keys + N);
}
template <size_t N>
bool known(const std::string_view (&keys)[N], const std::string& k) {
  return std::find(keys, keys + N, std::string_view(k)) != keys + N;
}

struct Ctx {
  Diagnostics& d;
  const std::string& text;
  std::set<std::string> commands;  // names from the file's `commands:`
  std::vector<int> anchor_lines;   // lines where anchors are defined
};

// The offset of a `<< name.path >>` parameter reference in s. A dot is
// required so that shell heredocs (`cat <<EOF >>log`) are not mistaken for one.
std::optional<std::pair<size_t, size_t>> find_parameter(std::string_view s) {
  for (size_t i = s.find("<<"); i != std::string_view::npos; i = s.find("<<", i + 1)) {
    size_t j = i + 2;
    while (j < s.size() && s[j] == ' ') ++j;
    const size_t id = j;
    bool dot = false;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '-' || s[j] == '.')) {
      dot = dot || s[j] == '.';
      ++j;
    }
    if (j == id || !dot || std::isdigit(static_cast<unsigned char>(s[id]))) continue;
    while (j < s.size() && s[j] == ' ') ++j;
    if (s.substr(j, 2) == ">>") return std::pair{i, j + 2 - i};
  }
  return std::nullopt;
}

// Points into the raw text at `needle` when it is written there literally
// after the node's start (true unless escapes changed it), else at the node.
Mark locate(const Ctx& c, const YAML::Node& n, std::string_view needle) {
  const YAML::Mark m = n.Mark();
  if (m.pos >= 0 && static_cast<size_t>(m.pos) < c.text.size()) {
    const size_t at = c.text.find(needle, static_cast<size_t>(m.pos));
    if (at != std::string::npos && at - static_cast<size_t>(m.pos) <= n.Scalar().size() * 2 + 64)
      return yaml::mark_at_offset(c.text, at);
  }
  return yaml::to_mark(m);
}

// Every string read from the job goes through here.
std::optional<std::string> text(Ctx& c, const YAML::Node& n, const std::string& what, Mark if_null,
                                Text kind = Text::SingleLine) {
  auto v = yaml::get_string(n, what, c.d, kind, if_null);
  if (!v) return v;
  if (auto p = find_parameter(*v)) {
    const std::string ref = v->substr(p->first, p->second);
    c.d.error(locate(c, n, ref),
              what + " uses `" + ref + "`: templating (pipeline and job parameters) is not supported by this runner",
              "literal text; pass values through `environment:` instead");
    return std::nullopt;
  }
  return v;
}
std::optional<std::string> text(Ctx& c, const Entry& e, Text kind = Text::SingleLine) {
  return text(c, e.value, quoted(e.key), e.mark, kind);
}

bool valid_env_name(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; });
}

void env_entry(Ctx& c, const Entry& e, EnvList& out) {
  if (!valid_env_name(e.key)) {
    c.d.error(e.mark, "environment variable name " + yaml::describe(YAML::Node(e.key)) + " is not valid",
              "names of letters, digits and _, not starting with a digit");
    return;
  }
  for (const auto& [k, v] : out)
    if (k == e.key) {
      c.d.error(e.mark, "environment variable `" + e.key + "` is set twice", "each name once");
      return;
    }
  if (out.size() >= kMaxEnvEntries) {
    if (out.size() == kMaxEnvEntries)
      c.d.error(e.mark, "more than " + std::to_string(kMaxEnvEntries) + " environment variables",
                "at most " + std::to_string(kMaxEnvEntries));
    out.emplace_back();  // so the error is reported once
    return;
  }
  if (auto v = text(c, e.value, "environment variable `" + e.key + "`", e.mark, Text::MultiLine))
    out.emplace_back(e.key, *v);
}

// A mapping of NAME: value, or (as CircleCI also allows) a list of
// single-entry mappings.
EnvList parse_env(Ctx& c, const Entry& e) {
  EnvList out;
  if (e.value.IsSequence()) {
    for (const auto& item : e.value) {
      if (!item.IsMap() || item.size() != 1) {
        c.d.error(yaml::to_mark(item.Mark()), "each item of a list `environment:` must be one `NAME: value`, found " +
                  yaml::describe(item), "NAME: value");
        continue;
      }
      for (const auto& ie : yaml::entries(item, c.d)) env_entry(c, ie, out);
    }
  } else if (e.value.IsMap()) {
    for (const auto& ie : yaml::entries(e.value, c.d)) env_entry(c, ie, out);
  } else {
    c.d.error(yaml::value_mark(e.value, e.mark), "`environment` must be a mapping of NAME: value, found " +
              yaml::describe(e.value), "NAME: value lines (or a list of them)");
  }
  if (out.size() > kMaxEnvEntries) out.resize(kMaxEnvEntries);
  return out;
}

// Directories are where the broker binds the workspace and where steps
// start: `~`, `~/x`, absolute or relative, never through `..`.
std::optional<std::string> directory(Ctx& c, const Entry& e) {
  auto v = text(c, e);
  if (!v) return v;
  std::string why;
  if (v->empty()) why = "is empty";
  else if (v->size() > 4095) why = "is longer than 4095 bytes";
  else if ((*v)[0] == '~' && v->size() > 1 && (*v)[1] != '/') why = "names another user's home (`~user`)";
  else {
    for (size_t i = 0; i <= v->size();) {
      size_t j = v->find('/', i);
      if (j == std::string::npos) j = v->size();
      if (v->compare(i, j - i, "..") == 0) why = "goes up through `..`";
      i = j + 1;
    }
  }
  if (why.empty()) return v;
  c.d.error(yaml::value_mark(e.value, e.mark), quoted(e.key) + " " + why,
            "~, ~/path, an absolute path or a relative one, without `..`");
  return std::nullopt;
}

std::optional<std::string> shell(Ctx& c, const Entry& e) {
  auto v = text(c, e);
  if (v && v->find_first_not_of(' ') == std::string::npos) {
    c.d.error(yaml::value_mark(e.value, e.mark), "`shell` is empty", "a shell command line such as /bin/bash -eo pipefail");
    return std::nullopt;
  }
  return v;
}

std::string first_line(const std::string& command) {
  size_t i = 0;
  while (i < command.size()) {
    size_t j = command.find('\n', i);
    if (j == std::string::npos) j = command.size();
    std::string l = command.substr(i, j - i);
    while (!l.empty() && std::isspace(static_cast<unsigned char>(l.back()))) l.pop_back();
    const size_t s = l.find_first_not_of(" \t");
    if (s != std::string::npos) {
      l = l.substr(s);
      for (char& ch : l)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) ch = ' ';
      return l;
    }
    i = j + 1;
  }
  return {};
}

void parse_run(Ctx& c, const Entry& step, Step& out) {
  RunStep& r = out.run;
  std::optional<std::string> name;
  if (step.value.IsScalar()) {
    auto cmd = text(c, step.value, "the `run` command", step.mark, Text::MultiLine);
    if (!cmd) return;
    r.command = *cmd;
  } else if (step.value.IsMap()) {
    bool has_command = false, bad_command = false;
    for (const auto& e : yaml::entries(step.value, c.d)) {
      if (e.key == "name") {
        name = text(c, e);
      } else if (e.key == "command") {
        has_command = true;
        // Keep checking the step's other keys: all errors are reported.
        if (auto cmd = text(c, e, Text::MultiLine)) r.command = *cmd;
        else bad_command = true;
      } else if (e.key == "environment") {
        r.environment = parse_env(c, e);
      } else if (e.key == "working_directory") {
        if (auto v = directory(c, e)) r.working_directory = *v;
      } else if (e.key == "no_output_timeout") {
        auto v = text(c, e);
        if (!v) continue;
        auto secs = policy::parse_duration_seconds(*v);
        if (!secs || *secs < 1 || *secs > 24 * 3600) {
          c.d.error(yaml::value_mark(e.value, e.mark), "`no_output_timeout` " + yaml::describe(e.value) +
                    " is not a duration from 1s to 24h", "a duration such as 30s, 10m, 1h or 1h30m");
          continue;
        }
        r.no_output_timeout = std::chrono::seconds(*secs);
      } else if (e.key == "when") {
        auto v = text(c, e);
        if (!v) continue;
        if (*v == "on_success") r.when = When::OnSuccess;
        else if (*v == "on_fail") r.when = When::OnFail;
        else if (*v == "always") r.when = When::Always;
        else c.d.error(yaml::value_mark(e.value, e.mark), "`when` " + yaml::describe(e.value) + " is not known",
                       "on_success, on_fail, always");
      } else if (e.key == "shell") {
        if (auto v = shell(c, e)) r.shell = *v;
      } else if (e.key == "background") {
        if (auto v = yaml::get_bool(e, c.d)) r.background = *v;
      } else {
        c.d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in a `run` step", allowed(kRunKeys));
      }
    }
    if (!has_command) {
      c.d.error(step.mark, "this `run` step has no `command`", "command: the script to run");
      return;
    }
    if (bad_command) return;
  } else {
    c.d.error(yaml::value_mark(step.value, step.mark), "`run` must be a command or a mapping, found " +
              yaml::describe(step.value), "run: COMMAND, or run: with name, command, ...");
    return;
  }
  if (r.command.size() > kMaxCommandBytes) {
    c.d.error(step.mark, "the command is " + std::to_string(r.command.size()) + " bytes, more than the limit of " +
              std::to_string(kMaxCommandBytes), "commands of at most " + std::to_string(kMaxCommandBytes / 1024) + " KiB");
    return;
  }
  const std::string line = first_line(r.command);
  if (line.empty()) {
    c.d.error(step.mark, "the `run` command is empty", "a command to run");
    return;
  }
  r.name = name && !name->empty() ? *name : line;
}

void parse_checkout(Ctx& c, const Entry& step, Step& out) {
  if (step.value.IsNull()) return;
  if (!yaml::expect_map(step, c.d)) return;
  for (const auto& e : yaml::entries(step.value, c.d)) {
    if (e.key == "path") {
      if (auto v = directory(c, e)) out.checkout.path = *v;
    } else if (e.key == "method") {
      // Only how CircleCI fetches the history; the copy here is of the work tree.
      auto v = text(c, e);
      if (v && *v != "full" && *v != "blobless")
        c.d.error(yaml::value_mark(e.value, e.mark), "checkout `method` " + yaml::describe(e.value) + " is not known",
                  "full, blobless");
    } else {
      c.d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in a `checkout` step", "path, method");
    }
  }
}

void parse_step(Ctx& c, const YAML::Node& item, Job& job) {
  Entry step;
  if (item.IsScalar()) {
    step = {item.Scalar(), YAML::Node(YAML::NodeType::Null), yaml::to_mark(item.Mark())};
  } else if (item.IsMap()) {
    auto es = yaml::entries(item, c.d);
    if (es.size() != 1) {
      std::vector<std::string> keys;
      for (const auto& e : es) keys.push_back(e.key);
      c.d.error(yaml::to_mark(item.Mark()), "a step must be a mapping with one key, the step's type; found " +
                (keys.empty() ? std::string("none") : yaml::join(keys)),
                "checkout, run (with its settings indented under it)");
      return;
    }
    step = es[0];
  } else {
    c.d.error(yaml::to_mark(item.Mark()), "a step must be a step name or a mapping, found " + yaml::describe(item),
              "- checkout, - run: COMMAND");
    return;
  }
  Step s;
  s.mark = step.mark;
  const std::string shown = yaml::describe(YAML::Node(step.key));
  if (step.key == "run") {
    s.kind = Step::Kind::Run;
    parse_run(c, step, s);
  } else if (step.key == "checkout") {
    s.kind = Step::Kind::Checkout;
    parse_checkout(c, step, s);
  } else if (auto it = std::find_if(std::begin(kRefusedSteps), std::end(kRefusedSteps),
                                    [&](const Refusal& r) { return r.key == step.key; });
             it != std::end(kRefusedSteps)) {
    c.d.error(step.mark, "step " + shown + " " + std::string(it->reason), "checkout, run");
    return;
  } else if (step.key.find('/') != std::string::npos) {
    c.d.error(step.mark, "step " + shown + " is an orb command: orbs are not supported by this runner "
              "(they are fetched config expanded by templating)", "checkout, run");
    return;
  } else if (c.commands.count(step.key)) {
    c.d.error(step.mark, "step " + shown + " is a custom command from `commands:`: commands are not supported by "
              "this runner (they are expanded by templating)", "checkout, run");
    return;
  } else {
    c.d.error(step.mark, "unknown step " + shown, "checkout, run");
    return;
  }
  job.steps.push_back(std::move(s));
}

void parse_machine(Ctx& c, const Entry& e) {
  if (e.value.IsMap()) {
    // The image and sizes name CircleCI's VMs; here the job runs on this host.
    for (const auto& me : yaml::entries(e.value, c.d)) {
      if (me.key == "image" || me.key == "resource_class") (void)text(c, me);
      else if (me.key == "docker_layer_caching") (void)yaml::get_bool(me, c.d);
      else if (me.key == "enabled") {
        // CircleCI 2.0's spelling of `machine: true`.
        auto b = yaml::get_bool(me, c.d);
        if (b && !*b)
          c.d.error(yaml::value_mark(me.value, me.mark), "`enabled: false` names no executor", "enabled: true");
      } else c.d.error(me.mark, "unknown key " + yaml::describe(YAML::Node(me.key)) + " in `machine`",
                       "image, docker_layer_caching, resource_class, enabled");
    }
    return;
  }
  auto b = yaml::get_bool(e, c.d);
  if (b && !*b)
    c.d.error(yaml::value_mark(e.value, e.mark), "`machine: false` names no executor",
              "machine: true, a mapping with image, or no `machine:` at all");
}

std::optional<Job> parse_job(Ctx& c, const YAML::Node& node, const std::string& name, Mark at) {
  if (!yaml::expect_map(node, "job `" + name + "`", c.d, at)) return std::nullopt;
  Job job;
  job.name = name;
  std::optional<Entry> steps;
  for (const auto& e : yaml::entries(node, c.d)) {
    if (e.key == "steps") {
      steps = e;
    } else if (e.key == "environment") {
      job.environment = parse_env(c, e);
    } else if (e.key == "working_directory") {
      if (auto v = directory(c, e)) job.working_directory = *v;
    } else if (e.key == "shell") {
      if (auto v = shell(c, e)) job.shell = *v;
    } else if (e.key == "machine") {
      parse_machine(c, e);
    } else if (e.key == "resource_class") {
      if (auto v = text(c, e)) job.resource_class = *v;
    } else if (e.key == "parallelism") {
      auto n = yaml::get_uint(e, 1, 1000000, c.d);
      if (n && *n != 1)
        c.d.error(e.mark, "`parallelism: " + std::to_string(*n) + "` is refused: this runner runs one copy of the "
                  "job on this host (no test splitting across machines)", "parallelism: 1");
    } else if (e.key == "description") {
      (void)text(c, e, Text::MultiLine);
    } else if (auto it = std::find_if(std::begin(kRefusedJobKeys), std::end(kRefusedJobKeys),
                                      [&](const Refusal& r) { return r.key == e.key; });
               it != std::end(kRefusedJobKeys)) {
      c.d.error(e.mark, std::string(it->reason), allowed(kJobKeys));
    } else {
      c.d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in job `" + name + "`",
                allowed(kJobKeys));
    }
  }
  if (!steps) {
    c.d.error(at, "job `" + name + "` has no `steps:`", "steps: a list of checkout and run steps");
    return std::nullopt;
  }
  if (!yaml::expect_list(*steps, c.d)) return std::nullopt;
  if (steps->value.size() == 0) {
    c.d.error(steps->mark, "job `" + name + "` has an empty `steps:` list", "at least one step");
    return std::nullopt;
  }
  if (steps->value.size() > kMaxSteps) {
    c.d.error(steps->mark, "job `" + name + "` has " + std::to_string(steps->value.size()) +
              " steps, more than the limit of " + std::to_string(kMaxSteps), "at most " + std::to_string(kMaxSteps));
    return std::nullopt;
  }
  for (const auto& item : steps->value) parse_step(c, item, job);
  return job;
}

std::string stem(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  for (const char* ext : {".yml", ".yaml"}) {
    const std::string_view x(ext);
    if (base.size() > x.size() && base.compare(base.size() - x.size(), x.size(), x) == 0)
      return base.substr(0, base.size() - x.size());
  }
  return base.empty() ? std::string("job") : base;
}

// CircleCI ignores top-level keys it does not know, and configs use that to
// keep anchors (`aliases:`, `defaults: &defaults`). Such a key is accepted
// when an anchor is defined in it; any other unknown key is likely a typo.
bool holds_anchor(const Ctx& c, const std::vector<Entry>& top, const Entry& e) {
  int end = std::numeric_limits<int>::max();
  for (const auto& o : top)
    if (o.mark.line > e.mark.line) end = std::min(end, o.mark.line);
  return std::any_of(c.anchor_lines.begin(), c.anchor_lines.end(),
                     [&](int l) { return l >= e.mark.line && l < end; });
}

void parse_config(Ctx& c, ParseOutcome& out, const YAML::Node& root, const std::vector<Entry>& top,
                  const std::optional<std::string>& job_name) {
  std::optional<Entry> jobs;
  bool has_version = false;
  for (const auto& e : top) {
    if (e.key == "version") {
      has_version = true;
      auto v = yaml::get_string(e, c.d);
      if (v && *v != "2" && *v != "2.0" && *v != "2.1")
        c.d.error(yaml::value_mark(e.value, e.mark), "CircleCI config version " + yaml::describe(e.value) +
                  " is not supported", "2, 2.1");
    } else if (e.key == "jobs") {
      jobs = e;
    } else if (e.key == "commands") {
      // Only their names matter: a step using one is refused by name.
      if (e.value.IsMap())
        for (const auto& ce : yaml::entries(e.value, c.d)) c.commands.insert(ce.key);
    } else if (!known(kTopKeys, e.key) && !holds_anchor(c, top, e)) {
      c.d.error(e.mark, "unknown top-level key " + yaml::describe(YAML::Node(e.key)),
                allowed(kTopKeys) + " (other keys only to hold YAML anchors `&name`)");
    }
  }
  if (!has_version)
    c.d.error(yaml::to_mark(root.Mark()), "this CircleCI config has no `version:`", "version: 2.1 (or 2)");
  if (!yaml::expect_map(*jobs, c.d)) return;
  std::vector<Entry> js;
  for (auto& j : yaml::entries(jobs->value, c.d)) {
    // Job names are echoed in messages and listings, and become CIRCLE_JOB.
    if (j.key.empty() || j.key.size() > 128 || yaml::printable(j.key) != j.key) {
      c.d.error(j.mark, "job name " + yaml::describe(YAML::Node(j.key)) + " is not valid",
                "1 to 128 bytes of printable text");
      continue;
    }
    out.available_jobs.push_back(j.key);
    js.push_back(std::move(j));
  }
  const Entry* pick = nullptr;
  if (job_name) {
    for (const auto& j : js)
      if (j.key == *job_name) pick = &j;
    if (!pick) {
      c.d.error(jobs->mark, "there is no job `" + *job_name + "` in this file",
                "one of the jobs it defines: " + yaml::join(out.available_jobs));
      return;
    }
  } else if (js.size() == 1) {
    pick = &js[0];
  } else if (js.empty()) {
    c.d.error(jobs->mark, "`jobs:` is empty", "at least one job");
    return;
  } else {
    c.d.error(jobs->mark, "this file defines " + std::to_string(js.size()) + " jobs; pick one with --job NAME",
              yaml::join(out.available_jobs));
    return;
  }
  out.job = parse_job(c, pick->value, pick->key, pick->mark);
}

void parse_into(ParseOutcome& out, const std::string& path, const std::string& text,
                const std::optional<std::string>& job_name) {
  Diagnostics& d = out.diagnostics;
  if (text.size() > kMaxJobFileBytes) {
    d.error({}, "the job file is " + std::to_string(text.size()) + " bytes, more than the limit of " +
            std::to_string(kMaxJobFileBytes / 1024) + " KiB", "job files of at most 1 MiB");
    return;
  }
  std::vector<int> anchor_lines;
  auto root = yaml::load(text, d, &anchor_lines);
  if (!root) return;
  if (!root->IsMap()) {
    d.error(yaml::value_mark(*root, {1, 1}), "the top level must be a mapping, found " + yaml::describe(*root),
            "a CircleCI config (version:, jobs:) or a single job (steps:)");
    return;
  }
  Ctx c{d, text, {}, std::move(anchor_lines)};
  const auto top = yaml::entries(*root, d);
  auto has = [&](const char* k) {
    return std::any_of(top.begin(), top.end(), [&](const Entry& e) { return e.key == k; });
  };
  if (has("jobs")) {
    parse_config(c, out, *root, top, job_name);
  } else if (has("steps")) {
    const std::string name = stem(path);
    out.available_jobs = {name};
    if (job_name && *job_name != name) {
      d.error({1, 1}, "there is no job `" + *job_name + "` in this file: it holds a single job (`steps:` at the top)",
              "--job " + name + ", or no --job");
      return;
    }
    out.job = parse_job(c, *root, name, yaml::to_mark(root->Mark()));
  } else {
    d.error(yaml::to_mark(root->Mark()), "neither `jobs:` (a CircleCI config) nor `steps:` (a single job) at the top level",
            "version: and jobs:, or steps:");
  }
  if (out.job) out.job->source_file = path;
}

}  // namespace

ParseOutcome parse_job_text(const std::string& display_path, const std::string& text,
                            const std::optional<std::string>& job_name) {
  ParseOutcome out{std::nullopt, Diagnostics(display_path, yaml::for_display(text)), {}, {}, {}};
  try {
    parse_into(out, display_path, text, job_name);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while reading the job file: ") + e.what(), "");
  } catch (...) {
    out.diagnostics.error({}, "internal error while reading the job file", "");
  }
  if (out.diagnostics.has_errors()) out.job.reset();
  return out;
}

ParseOutcome parse_job_text(const std::string& display_path, const std::string& text, const ProcessInput& in) {
  if (in.workflow && !in.job_name) return plan_workflow_text(display_path, text, in);
  return parse_job_text(display_path, text, in.job_name);
}

ParseOutcome parse_job_file(const std::string& path, const std::optional<std::string>& job_name) {
  ParseOutcome out{std::nullopt, Diagnostics(path), {}, {}, {}};
  try {
    auto text = yaml::read_file_limited(path, kMaxJobFileBytes, "job file " + path, out.diagnostics);
    if (!text) return out;
    return parse_job_text(path, *text, job_name);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("cannot read the job file: ") + e.what(), "");
  }
  return out;
}

}  // namespace gh::job
