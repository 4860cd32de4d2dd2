// A workflow's body as written: its keys, each `jobs:` item with its
// settings, filters and matrix (workflow_read.hpp). Everything is checked
// here, before workflow.cpp expands anything.
#include "policy/workflow_read.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

namespace gh::job::workflow::detail {

namespace {

using yaml::Entry;

constexpr size_t kMaxPatternBytes = 1024;

std::string shown(const std::string& s) { return "`" + yaml::printable(s.substr(0, 128)) + (s.size() > 128 ? "...`" : "`"); }

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= kMaxNameBytes && yaml::printable(s) == s;
}

std::optional<std::string> name_of(const YAML::Node& n, const std::string& what, Mark at, Diagnostics& d) {
  auto s = yaml::get_string(n, what, d, yaml::Text::SingleLine, at);
  if (!s) return std::nullopt;
  // Matrix references may lengthen it; the final name is checked again.
  if (s->empty() || s->size() > kMaxNameBytes) {
    d.error(yaml::value_mark(n, at), what + " " + shown(*s) + " is not valid",
            "1 to " + std::to_string(kMaxNameBytes) + " bytes of printable text");
    return std::nullopt;
  }
  return s;
}

// A specifier list: one string or a list of them, each a name or /regex/.
std::vector<Pattern> patterns(const Entry& e, Diagnostics& d) {
  std::vector<YAML::Node> items;
  if (e.value.IsSequence()) {
    for (const auto& i : e.value) items.push_back(i);
  } else {
    items.push_back(e.value);
  }
  std::vector<Pattern> out;
  for (const auto& i : items) {
    auto s = yaml::get_string(i, yaml::quoted(e.key), d, yaml::Text::SingleLine, e.mark);
    if (!s) continue;
    Pattern p{*s, std::nullopt};
    if (s->size() >= 2 && s->front() == '/' && s->back() == '/') {
      if (s->size() > kMaxPatternBytes) {
        d.error(yaml::value_mark(i, e.mark), "this regular expression is " + std::to_string(s->size()) +
                " bytes, more than the limit of " + std::to_string(kMaxPatternBytes), "a shorter /regex/");
        continue;
      }
      // ECMAScript syntax where CircleCI's is Java's: the usual forms are
      // the same; one this library cannot read is refused, never guessed.
      // A pattern built to backtrack forever costs the confined parse
      // child's time limit, and refuses the job.
      try {
        p.re.emplace(s->substr(1, s->size() - 2), std::regex::ECMAScript);
      } catch (const std::regex_error& ex) {
        d.error(yaml::value_mark(i, e.mark), shown(*s) + " is not a regular expression this runner can read (" +
                ex.what() + ")", "a name, or /regex/ in ECMAScript syntax matching the whole name");
        continue;
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<Rule> rule(const Entry& e, Diagnostics& d) {
  if (!yaml::expect_map(e, d)) return std::nullopt;
  Rule r;
  for (const auto& k : yaml::entries(e.value, d)) {
    if (k.key == "only") {
      r.has_only = true;
      r.only = patterns(k, d);
    } else if (k.key == "ignore") {
      r.has_ignore = true;
      r.ignore = patterns(k, d);
    } else {
      d.error(k.mark, "unknown key " + shown(k.key) + " in `" + e.key + "`", "only, ignore");
    }
  }
  return r;
}

void read_filters(const Entry& e, Filters& f, Diagnostics& d) {
  if (e.value.IsScalar()) {
    d.error(yaml::value_mark(e.value, e.mark), "expression `filters` are not supported by this runner yet",
            "filters: with `branches:` and `tags:` (only / ignore)");
    return;
  }
  if (!yaml::expect_map(e, d)) return;
  for (const auto& k : yaml::entries(e.value, d)) {
    if (k.key == "branches") f.branches = rule(k, d);
    else if (k.key == "tags") f.tags = rule(k, d);
    else d.error(k.mark, "unknown key " + shown(k.key) + " in `filters`", "branches, tags");
  }
}

bool matches(const std::vector<Pattern>& ps, const std::string& s) {
  for (const auto& p : ps) {
    if (p.re ? std::regex_match(s, *p.re) : p.text == s) return true;
  }
  return false;
}

void read_requires(const Entry& e, Raw& r, Diagnostics& d) {
  if (!yaml::expect_list(e, d)) return;
  if (e.value.size() > kMaxWorkflowJobs) {
    d.error(e.mark, "`requires` lists " + std::to_string(e.value.size()) + " jobs, more than the limit of " +
            std::to_string(kMaxWorkflowJobs), "fewer requirements");
    return;
  }
  for (const auto& item : e.value) {
    const Mark at = yaml::value_mark(item, e.mark);
    if (item.IsMap()) {
      d.error(at, "a requirement with a status (`job: failed`) is not supported by this runner yet",
              "the name of a job that must succeed first");
      continue;
    }
    if (auto s = name_of(item, "a requirement", e.mark, d)) r.requires_.emplace_back(*s, at);
  }
}

void read_matrix(const Entry& e, Raw& r, Diagnostics& d) {
  if (!yaml::expect_map(e, d)) return;
  r.has_matrix = true;
  std::optional<Entry> exclude;
  bool has_params = false;
  for (const auto& k : yaml::entries(e.value, d)) {
    if (k.key == "parameters") {
      has_params = true;
      if (!yaml::expect_map(k, d)) continue;
      for (const auto& p : yaml::entries(k.value, d)) {
        if (!yaml::expect_list(p, d)) continue;
        if (p.value.size() == 0) {
          d.error(p.mark, "matrix parameter " + shown(p.key) + " has no values", "a list of at least one value");
          continue;
        }
        std::vector<YAML::Node> vals;
        for (const auto& v : p.value) {
          // A value becomes part of a job's name: only scalars can.
          if (!v.IsScalar() || !yaml::get_string(v, "a matrix value", d)) {
            if (!v.IsScalar())
              d.error(yaml::value_mark(v, p.mark), "matrix value " + yaml::describe(v) + " is not a scalar",
                      "strings, numbers and booleans");
            continue;
          }
          vals.push_back(v);
        }
        r.param_marks[p.key] = p.mark;
        r.params.emplace_back(p.key, std::move(vals));
      }
    } else if (k.key == "exclude") {
      exclude = k;
    } else if (k.key == "alias") {
      if (auto s = name_of(k.value, "`alias`", k.mark, d)) r.alias = *s;
    } else {
      d.error(k.mark, "unknown key " + shown(k.key) + " in `matrix`", "parameters, exclude, alias");
    }
  }
  if (!has_params) {
    d.error(e.mark, "this `matrix` has no `parameters`", "parameters: a map of parameter names to lists of values");
    return;
  }
  std::sort(r.params.begin(), r.params.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (r.alias.empty()) r.alias = r.job;
  // The expansion is bounded before it is made: the product of the lists.
  uint64_t n = 1;
  for (const auto& [k, vals] : r.params) {
    n *= vals.size();
    if (n > kMaxWorkflowJobs) {
      d.error(e.mark, "this matrix expands to more than " + std::to_string(kMaxWorkflowJobs) + " jobs",
              "at most " + std::to_string(kMaxWorkflowJobs) + " jobs in a workflow");
      return;
    }
  }
  if (!exclude || !yaml::expect_list(*exclude, d)) return;
  if (exclude->value.size() > kMaxWorkflowJobs) {
    d.error(exclude->mark, "`exclude` lists more combinations than the matrix can have", "fewer excluded combinations");
    return;
  }
  for (const auto& item : exclude->value) {
    const Mark at = yaml::value_mark(item, exclude->mark);
    if (!yaml::expect_map(item, "an excluded combination", d, exclude->mark)) continue;
    std::vector<std::pair<std::string, std::string>> combo;
    for (const auto& kv : yaml::entries(item, d)) {
      auto it = std::find_if(r.params.begin(), r.params.end(), [&](const auto& p) { return p.first == kv.key; });
      if (it == r.params.end()) {
        d.error(kv.mark, shown(kv.key) + " is not a parameter of this matrix", "the names under `parameters`");
        continue;
      }
      if (!kv.value.IsScalar()) {
        d.error(yaml::value_mark(kv.value, kv.mark), "an excluded value must be a scalar, found " +
                yaml::describe(kv.value), "one of the parameter's values");
        continue;
      }
      combo.emplace_back(kv.key, kv.value.Scalar());
    }
    if (combo.empty()) d.error(at, "an empty excluded combination would exclude every job", "parameter: value pairs");
    else r.excludes.push_back(std::move(combo));
  }
}

// One `jobs:` item: `- name` or `- name: {settings}`.
std::optional<Raw> read_item(const YAML::Node& item, Diagnostics& d) {
  Raw r;
  YAML::Node body;
  if (item.IsScalar()) {
    auto s = name_of(item, "a job name", {}, d);
    if (!s) return std::nullopt;
    r.job = *s;
    r.mark = yaml::to_mark(item.Mark());
  } else if (item.IsMap()) {
    auto es = yaml::entries(item, d);
    if (es.size() != 1) {
      std::vector<std::string> keys;
      for (const auto& e : es) keys.push_back(yaml::printable(e.key));
      d.error(yaml::to_mark(item.Mark()), "a workflow's job must be a mapping with one key, the job's name; found " +
              (keys.empty() ? std::string("none") : yaml::join(keys)),
              "- JOB, or - JOB: with requires, name, filters... indented under it");
      return std::nullopt;
    }
    if (!valid_name(es[0].key)) {
      d.error(es[0].mark, "the job name " + shown(es[0].key) + " is not valid",
              "1 to " + std::to_string(kMaxNameBytes) + " bytes of printable text");
      return std::nullopt;
    }
    r.job = es[0].key;
    r.mark = es[0].mark;
    body = es[0].value;
    if (!body.IsNull() && !yaml::expect_map(es[0], d)) return std::nullopt;
  } else {
    d.error(yaml::to_mark(item.Mark()), "a workflow's job must be a name or a mapping, found " + yaml::describe(item),
            "- JOB, or - JOB: with its settings");
    return std::nullopt;
  }
  if (!body.IsDefined() || body.IsNull()) return r;
  std::optional<Entry> matrix;
  for (const auto& e : yaml::entries(body, d)) {
    if (e.key == "requires") {
      read_requires(e, r, d);
    } else if (e.key == "name") {
      r.name = name_of(e.value, "`name`", e.mark, d);
      r.name_mark = yaml::value_mark(e.value, e.mark);
    } else if (e.key == "context") {
      // Contexts are CircleCI's organisation secrets; here secrets come
      // from the policy's profile, which the rules choose.
      if (e.value.IsSequence()) {
        for (const auto& c : e.value) (void)yaml::get_string(c, "`context`", d);
      } else {
        (void)yaml::get_string(e, d);
      }
      d.warning(e.mark, "`context` is ignored: this runner's jobs get the secrets their policy profile grants",
                "secrets in the policy's profiles");
    } else if (e.key == "type") {
      auto s = yaml::get_string(e, d);
      if (s && *s == "approval") r.approval = true;
      else if (s) d.error(yaml::value_mark(e.value, e.mark), "job type " + shown(*s) + " is not known", "approval");
    } else if (e.key == "filters") {
      read_filters(e, r.filters, d);
    } else if (e.key == "matrix") {
      matrix = e;
    } else if (e.key == "pre-steps" || e.key == "post-steps") {
      if (!yaml::expect_list(e, d)) continue;
      (e.key == "pre-steps" ? r.pre_steps : r.post_steps) = e.value;
      (e.key == "pre-steps" ? r.pre_mark : r.post_mark) = e.mark;
    } else if (e.key == "serial-group") {
      // Orders jobs across pipelines on CircleCI's side; one run here has no other pipeline.
      (void)yaml::get_string(e, d);
    } else {
      r.args.push_back(e);  // a parameter argument: the job's `parameters:` decide
    }
  }
  if (matrix) read_matrix(*matrix, r, d);
  for (const auto& [k, vals] : r.params)
    for (const auto& a : r.args)
      if (a.key == k)
        d.error(a.mark, shown(k) + " is both a matrix parameter and an argument of this job", "one or the other");
  if (r.approval && (!r.args.empty() || !r.pre_steps.IsNull() || !r.post_steps.IsNull()))
    d.error(r.mark, "approval " + shown(r.job) + " runs no job: it takes no parameters or steps",
            "type, name, requires, filters, matrix");
  return r;
}

}  // namespace

bool passes(const Filters& f, const ProcessInput& in) {
  // A tag's pipeline: only jobs whose tag filter says so (CircleCI runs no
  // job for a tag by default); branch filters do not apply.
  if (!in.tag.empty()) {
    if (!f.tags) return false;
    const Rule& r = *f.tags;
    if (!r.has_only && !r.has_ignore) return false;
    if (r.has_only && !matches(r.only, in.tag)) return false;
    return !(r.has_ignore && matches(r.ignore, in.tag));
  }
  if (!f.branches) return true;
  const Rule& r = *f.branches;
  if (r.has_only && !matches(r.only, in.branch)) return false;
  return !(r.has_ignore && matches(r.ignore, in.branch));
}

std::optional<MatrixRef> find_matrix_ref(std::string_view s, size_t from) {
  for (size_t i = s.find("<<", from); i != std::string_view::npos; i = s.find("<<", i + 1)) {
    size_t j = i + 2;
    while (j < s.size() && s[j] == ' ') ++j;
    if (s.substr(j, 7) != "matrix.") continue;
    j += 7;
    const size_t id = j;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '-')) ++j;
    if (j == id) continue;
    const std::string name(s.substr(id, j - id));
    while (j < s.size() && s[j] == ' ') ++j;
    if (s.substr(j, 2) == ">>") return MatrixRef{i, j + 2 - i, name};
  }
  return std::nullopt;
}

std::optional<std::vector<Raw>> read_body(const Entry& e, Workflow& wf, Diagnostics& d) {
  if (!yaml::expect_map(e, d)) return std::nullopt;
  std::optional<Entry> jobs;
  for (const auto& k : yaml::entries(e.value, d)) {
    if (k.key == "jobs") jobs = k;
    else if (k.key == "when") wf.when = k;
    else if (k.key == "unless") wf.unless = k;
    else if (k.key == "triggers")
      // Schedules belong to the control plane; asked for by name, the
      // workflow's jobs run now.
      d.warning(k.mark, "`triggers` is ignored: `gatehouse run --workflow` runs the workflow now, whatever its schedule",
                "");
    else d.error(k.mark, "unknown key " + shown(k.key) + " in workflow " + shown(e.key), "jobs, when, unless, triggers");
  }
  if (!jobs) {
    d.error(e.mark, "workflow " + shown(e.key) + " has no `jobs:`", "jobs: a list of the jobs it runs");
    return std::nullopt;
  }
  if (!yaml::expect_list(*jobs, d)) return std::nullopt;
  if (jobs->value.size() == 0) {
    d.error(jobs->mark, "workflow " + shown(e.key) + " has an empty `jobs:` list", "at least one job");
    return std::nullopt;
  }
  std::vector<Raw> raws;
  uint64_t total = 0;
  for (const auto& item : jobs->value) {
    auto r = read_item(item, d);
    if (!r) continue;
    uint64_t n = 1;
    for (const auto& [k, vals] : r->params) n = std::min<uint64_t>(n * vals.size(), kMaxWorkflowJobs + 1);
    total += n;
    if (total > kMaxWorkflowJobs) {
      d.error(r->mark, "workflow " + shown(e.key) + " has more than " + std::to_string(kMaxWorkflowJobs) +
              " jobs with this one (matrices expanded)", "at most " + std::to_string(kMaxWorkflowJobs) + " jobs");
      return std::nullopt;
    }
    raws.push_back(std::move(*r));
  }
  return raws;
}

}  // namespace gh::job::workflow::detail
