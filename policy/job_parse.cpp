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
#include "policy/config_process.hpp"
#include "policy/job.hpp"
#include "policy/profile.hpp"
#include "policy/workflow.hpp"

namespace gh::job {

namespace {

using yaml::Entry;
using yaml::quoted;
using yaml::Text;

constexpr std::string_view kJobKeys[] = {"steps", "environment", "working_directory", "shell", "machine",
                                         "resource_class", "parallelism", "description", "type"};
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
    {"add_ssh_keys", "is refused: this runner does not hand SSH keys to jobs by fingerprint; a job gets the secrets "
                     "its policy profile names, as files or variables (docs/policy.md, \"Secrets\")"},
    {"setup_remote_docker", "is refused: there is no remote Docker engine here; a job reaches Docker only when its "
                            "policy profile grants it (`docker: {mode: proxy}` gives the job a filtered "
                            "/var/run/docker.sock), and then needs no setup step"},
    {"deploy", "is not supported: CircleCI deprecated it; use a `run` step"},
};
constexpr Refusal kRefusedJobKeys[] = {
    {"docker", "`docker:` executor is refused: Gatehouse is a machine runner and runs jobs on this host, not in "
               "containers; use `machine: true` or leave the executor out"},
    {"macos", "`macos:` executor is refused: this runner runs jobs on this Linux host"},
    {"windows", "`windows:` executor is refused: this runner runs jobs on this Linux host"},
    {"executor", "`executor:` names one of the config's `executors:`; this file holds a single job and has none "
                 "(use `machine: true`, or a config with `version: 2.1` and `executors:`)"},
    {"circleci_ip_ranges", "`circleci_ip_ranges` is refused: jobs on this runner have no network unless the policy "
                           "grants it, and never CircleCI's IP ranges"},
    {"parameters", "job `parameters:` belong in a config (`version: 2.1`, `jobs:`); this file holds a single job"},
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
  std::vector<int> anchor_lines;   // lines where anchors are defined
};

// Every string read from the job goes through here.
std::optional<std::string> text(Ctx& c, const YAML::Node& n, const std::string& what, Mark if_null,
                                Text kind = Text::SingleLine) {
  return yaml::get_string(n, what, c.d, kind, if_null);
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
        // Empty is the job's own, as on CircleCI (commands pass "" for "here").
        if (e.value.IsScalar() && e.value.Scalar().empty()) continue;
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
  // The `circleci` CLI of CircleCI's machines is not here: fail at the line,
  // not minutes into the job with "command not found".
  for (const char* sub : {"circleci tests split", "circleci tests glob", "circleci tests run"})
    if (r.command.find(sub) != std::string::npos) {
      c.d.error(step.mark, std::string("this step calls `") + sub + "`: the circleci CLI is not on this runner, and test "
                "splitting needs CircleCI's timing data; each node gets CIRCLE_NODE_INDEX and CIRCLE_NODE_TOTAL instead",
                "split with CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL in the script, e.g. awk 'NR % TOTAL == INDEX'");
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
  } else {
    // Commands, orb commands and `when`/`unless` were expanded before this
    // (config_process.cpp); what is left is not a step anywhere.
    c.d.error(step.mark, "unknown step " + shown + ": not a built-in step, and no command of that name is defined",
              "checkout, run, a command from `commands:` or an orb's (orb/command)");
    return;
  }
  job.steps.push_back(std::move(s));
}

void parse_machine(Ctx& c, const Entry& e, Job& job) {
  if (e.value.IsMap()) {
    // The broker checks image and class against the policy and this host.
    for (const auto& me : yaml::entries(e.value, c.d)) {
      if (me.key == "image") {
        if (auto v = text(c, me)) {
          job.machine_image = *v;
          job.machine_image_mark = yaml::value_mark(me.value, me.mark);
        }
      } else if (me.key == "resource_class") {
        if (auto v = text(c, me); v && job.resource_class.empty()) {
          job.resource_class = *v;
          job.resource_class_mark = yaml::value_mark(me.value, me.mark);
        }
      } else if (me.key == "shell") {
        // CircleCI's Windows machines take their shell here; the job's wins.
        if (auto v = shell(c, me); v && job.shell.empty()) job.shell = *v;
      } else if (me.key == "docker_layer_caching") (void)yaml::get_bool(me, c.d);
      else if (me.key == "enabled") {
        // CircleCI 2.0's spelling of `machine: true`.
        auto b = yaml::get_bool(me, c.d);
        if (b && !*b)
          c.d.error(yaml::value_mark(me.value, me.mark), "`enabled: false` names no executor", "enabled: true");
      } else c.d.error(me.mark, "unknown key " + yaml::describe(YAML::Node(me.key)) + " in `machine`",
                       "image, docker_layer_caching, resource_class, shell, enabled");
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
  std::optional<Entry> steps, machine;
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
      machine = e;
    } else if (e.key == "resource_class") {
      if (auto v = text(c, e)) {
        job.resource_class = *v;
        job.resource_class_mark = yaml::value_mark(e.value, e.mark);
      }
    } else if (e.key == "parallelism") {
      if (auto n = yaml::get_uint(e, 1, kMaxParallelism, c.d)) job.parallelism = static_cast<uint32_t>(*n);
    } else if (e.key == "description") {
      (void)text(c, e, Text::MultiLine);
    } else if (e.key == "type") {
      // CircleCI's job types: `build` runs steps; `no-op` and `approval` run
      // nothing (a workflow passes them, or waits for a person).
      auto v = text(c, e);
      if (v && *v != "build")
        c.d.error(yaml::value_mark(e.value, e.mark), "job `" + name + "` is `type: " + *v + "`: it has no steps to run" +
                  (*v == "no-op" || *v == "approval" ? std::string("; in a workflow (--workflow) it passes without running")
                                                     : std::string("; job types are build, no-op, approval")),
                  "run the workflow with --workflow, or a job of type build");
      else if (v) continue;
      return std::nullopt;
    } else if (auto it = std::find_if(std::begin(kRefusedJobKeys), std::end(kRefusedJobKeys),
                                      [&](const Refusal& r) { return r.key == e.key; });
               it != std::end(kRefusedJobKeys)) {
      c.d.error(e.mark, std::string(it->reason), allowed(kJobKeys));
    } else {
      c.d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in job `" + name + "`",
                allowed(kJobKeys));
    }
  }
  // After the job's own resource_class, which wins over the machine's.
  if (machine) parse_machine(c, *machine, job);
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

// Errors the job parser found in the processed text, taken back to the
// user's line (and the chain of uses that put the text there).
void take_home(const Diagnostics& from, const cfg::Emitted& e, Diagnostics& to) {
  for (const auto& x : from.all()) {
    cfg::Place p;
    if (const cfg::Node* n = e.at(x.mark)) p = cfg::place_of(*n);
    if (x.severity == Severity::Error) to.error(p.mark, x.message + p.via, x.allowed);
    else to.warning(p.mark, x.message + p.via, x.allowed);
  }
}

Mark home(const cfg::Emitted& e, Mark m) {
  const cfg::Node* n = e.at(m);
  return n ? cfg::place_of(*n).mark : Mark{};
}

// The processed job through the job parser: written out, read back, checked.
std::optional<Job> parse_processed(Diagnostics& d, const cfg::NodePtr& job, const std::string& name, Mark at) {
  auto root = std::make_shared<cfg::Node>();
  root->kind = cfg::Node::Kind::Map;
  root->entries.emplace_back(cfg::Key{name, at}, job);
  auto e = cfg::emit(*root, cfg::Budget::kMaxBytes);
  if (!e) {
    d.error(at, "job `" + name + "` expands to more than " + std::to_string(cfg::Budget::kMaxBytes >> 20) + " MiB",
            "commands and parameters that expand to less");
    return std::nullopt;
  }
  Diagnostics inner("processed", e->text);
  std::optional<Job> out;
  if (auto y = yaml::load(e->text, inner)) {
    Ctx c{inner, e->text, {}};
    for (const auto& entry : yaml::entries(*y, inner)) out = parse_job(c, entry.value, name, entry.mark);
  }
  take_home(inner, *e, d);
  if (!out) return out;
  out->machine_image_mark = home(*e, out->machine_image_mark);
  out->resource_class_mark = home(*e, out->resource_class_mark);
  for (auto& st : out->steps) st.mark = home(*e, st.mark);
  return out;
}

void parse_config(Ctx& c, ParseOutcome& out, const YAML::Node& root, const std::vector<Entry>& top,
                  const ProcessInput& in) {
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
    } else if (!known(kTopKeys, e.key) && !holds_anchor(c, top, e)) {
      // CircleCI ignores keys it does not know (`notify:` and other legacy keys).
      c.d.warning(e.mark, "unknown top-level key " + yaml::describe(YAML::Node(e.key)) + " is ignored, as CircleCI ignores it",
                  allowed(kTopKeys));
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
  std::optional<Entry> workflows;
  for (const auto& e : top)
    if (e.key == "workflows") workflows = e;
  // The names a workflow gives jobs (`name:`, matrix expansions) are job
  // names too; listed after the file's own when the choice is wrong.
  auto list_invocations = [&] {
    if (!workflows) return;
    Diagnostics scratch("");
    for (const auto& w : workflow::names(workflows->value, scratch)) {
      ProcessInput all = in;
      all.branch.clear();
      all.tag.clear();
      auto wf = workflow::read(workflows->value, w, all, scratch);
      if (!wf) continue;
      for (const auto& iv : wf->jobs)
        if (!iv.approval && std::find(out.available_jobs.begin(), out.available_jobs.end(), iv.name) == out.available_jobs.end() &&
            out.available_jobs.size() < kMaxWorkflowJobs)
          out.available_jobs.push_back(iv.name);
    }
  };
  // A workflow's invocation brings the job's arguments and its pre- and
  // post-steps; a job asked for by its `jobs:` key alone has neither.
  std::optional<std::pair<workflow::Workflow, size_t>> inv;
  if (in.job_name && workflows) inv = workflow::find_invocation(workflows->value, *in.job_name, in, c.d);
  if (c.d.has_errors()) return;
  cfg::JobUse use;
  std::string name;
  Mark at;
  if (inv) {
    const workflow::Invocation& iv = inv->first.jobs[inv->second];
    if (iv.approval) {
      c.d.error(iv.mark, "`" + iv.name + "` is a `type: approval` job of workflow `" + inv->first.name +
                "`: it has no steps; it holds the jobs that require it", "--workflow " + inv->first.name + " --approve " + iv.name);
      return;
    }
    use = cfg::use_of(iv, c.d);
    name = iv.name;
    at = iv.mark;
  } else if (in.job_name) {
    const Entry* pick = nullptr;
    for (const auto& j : js)
      if (j.key == *in.job_name) pick = &j;
    if (!pick) {
      list_invocations();
      out.choice_error = true;
      c.d.error(jobs->mark, "there is no job `" + *in.job_name + "` in this file",
                "one of the jobs it defines or a workflow names: " + yaml::join(out.available_jobs));
      return;
    }
    use = cfg::JobUse{pick->key, {}, pick->mark, nullptr, nullptr};
    name = pick->key;
    at = pick->mark;
  } else if (js.size() == 1) {
    use = cfg::JobUse{js[0].key, {}, js[0].mark, nullptr, nullptr};
    name = js[0].key;
    at = js[0].mark;
  } else if (js.empty()) {
    c.d.error(jobs->mark, "`jobs:` is empty", "at least one job");
    return;
  } else {
    list_invocations();
    out.choice_error = true;
    c.d.error(jobs->mark, "this file defines " + std::to_string(js.size()) + " jobs; pick one with --job NAME",
              yaml::join(out.available_jobs));
    return;
  }
  if (c.d.has_errors()) return;
  cfg::Processor p(cfg::from_yaml(root, c.d), in, c.d, c.text);
  if (c.d.has_errors()) return;
  auto job = p.job(use);
  if (!p.needed_orbs().empty() && !c.d.has_errors()) {
    out.needed_orbs = p.needed_orbs();
    return;
  }
  if (!job) return;
  out.job = parse_processed(c.d, job, name, at);
}

void parse_into(ParseOutcome& out, const std::string& path, const std::string& text, const ProcessInput& in) {
  const std::optional<std::string>& job_name = in.job_name;
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
  Ctx c{d, text, std::move(anchor_lines)};
  const auto top = yaml::entries(*root, d);
  auto has = [&](const char* k) {
    return std::any_of(top.begin(), top.end(), [&](const Entry& e) { return e.key == k; });
  };
  if (has("jobs")) {
    parse_config(c, out, *root, top, in);
  } else if (has("steps")) {
    const std::string name = stem(path);
    out.available_jobs = {name};
    if (job_name && *job_name != name) {
      out.choice_error = true;
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
  ProcessInput in;
  in.job_name = job_name;
  return parse_job_text(display_path, text, in);
}

ParseOutcome parse_job_text(const std::string& display_path, const std::string& text, const ProcessInput& in) {
  if (in.workflow && !in.job_name) return plan_workflow_text(display_path, text, in);
  ParseOutcome out{std::nullopt, Diagnostics(display_path, yaml::for_display(text)), {}, {}, {}, false};
  try {
    parse_into(out, display_path, text, in);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while reading the job file: ") + e.what(), "");
  } catch (...) {
    out.diagnostics.error({}, "internal error while reading the job file", "");
  }
  if (out.diagnostics.has_errors()) out.job.reset();
  return out;
}

ParseOutcome parse_job_file(const std::string& path, const std::optional<std::string>& job_name) {
  ProcessInput in;
  in.job_name = job_name;
  return parse_job_file(path, in);
}

ParseOutcome parse_job_file(const std::string& path, const ProcessInput& in) {
  ParseOutcome out{std::nullopt, Diagnostics(path), {}, {}, {}, false};
  try {
    auto text = yaml::read_file_limited(path, kMaxJobFileBytes, "job file " + path, out.diagnostics);
    if (!text) return out;
    return parse_job_text(path, *text, in);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("cannot read the job file: ") + e.what(), "");
  }
  return out;
}

}  // namespace gh::job
