// Reading one workflow (workflow.hpp says what CircleCI's rules are and
// which of them this follows). The file is hostile: every list is bounded
// before it is expanded, every name is checked before it is echoed, and the
// work of substituting matrix values is counted.
#include "policy/template_sections.hpp"
#include "policy/workflow.hpp"

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "policy/workflow_read.hpp"

namespace gh::job::workflow {

namespace {

using detail::Raw;
using yaml::Entry;

// Nodes visited while substituting `<< matrix.x >>`, for a whole workflow:
// a matrix of 1000 over arguments of a million nodes must not cost 10^9.
constexpr size_t kMaxSubstitutionNodes = 4'000'000;

using Values = std::vector<std::pair<std::string, YAML::Node>>;  // one combination, by parameter name

struct Expander {
  Diagnostics& d;
  size_t budget = kMaxSubstitutionNodes;
  bool over_budget = false;

  // `s` with each `<< matrix.x >>` replaced by x's value; errors at `at`.
  std::optional<std::string> text(const std::string& raw, const Values* v, Mark at) {
    auto sec = resolve_sections(raw, [&](const std::string& name) -> std::optional<bool> {
      if (name.rfind("matrix.", 0) != 0) return std::nullopt;
      const YAML::Node* val = lookup(v, name.substr(7), at);
      if (!val) return std::nullopt;
      return val->IsScalar() && truthy_text(val->Scalar(), val->Tag() == "?");
    });
    if (!sec.error.empty()) {
      d.error(at, sec.error, "<<# matrix.NAME >>text<</ matrix.NAME >>");
      return std::nullopt;
    }
    const std::string& s = sec.text;
    std::string out;
    size_t from = 0;
    while (auto ref = detail::find_matrix_ref(s, from)) {
      out.append(s, from, ref->pos - from);
      const YAML::Node* val = lookup(v, ref->name, at);
      if (!val) return std::nullopt;
      out += val->Scalar();
      from = ref->pos + ref->len;
    }
    out.append(s, from, std::string::npos);
    return out;
  }

  // `n` with matrix references substituted. Subtrees without one are the
  // same nodes (their marks intact); a scalar that is exactly one reference
  // becomes the matrix value's own node.
  YAML::Node node(const YAML::Node& n, const Values* v, Mark at) {
    if (over_budget || !n.IsDefined()) return n;
    if (budget-- == 0) {
      over_budget = true;
      d.error(at, "substituting the matrix's values here takes more than " + std::to_string(kMaxSubstitutionNodes) +
              " steps", "smaller arguments, or fewer combinations");
      return n;
    }
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      auto ref = detail::find_matrix_ref(s, 0);
      if (!ref && s.find("<<#") == std::string::npos && s.find("<<^") == std::string::npos) return n;
      if (!ref) ref = detail::MatrixRef{std::string::npos, 0, {}};
      if (ref->pos == 0 && ref->len == s.size()) {
        const YAML::Node* val = lookup(v, ref->name, at);
        return val ? *val : n;
      }
      auto t = text(s, v, at);
      if (!t) return n;
      YAML::Node out(*t);
      out.SetTag("!");  // interpolated text is a string, as a quoted scalar would be
      return out;
    }
    if (n.IsSequence()) {
      std::vector<YAML::Node> items;
      bool changed = false;
      for (const auto& item : n) {
        items.push_back(node(item, v, at));
        changed = changed || !items.back().is(item);
      }
      if (!changed) return n;
      YAML::Node out(YAML::NodeType::Sequence);
      for (auto& item : items) out.push_back(item);
      return out;
    }
    if (n.IsMap()) {
      std::vector<std::pair<YAML::Node, YAML::Node>> kv;
      bool changed = false;
      for (const auto& p : n) {
        kv.emplace_back(p.first, node(p.second, v, at));
        changed = changed || !kv.back().second.is(p.second);
      }
      if (!changed) return n;
      YAML::Node out(YAML::NodeType::Map);
      for (auto& [k, val] : kv) out.force_insert(k, val);
      return out;
    }
    return n;
  }

  const YAML::Node* lookup(const Values* v, const std::string& name, Mark at) {
    if (!v) {
      d.error(at, "`<< matrix." + yaml::printable(name) + " >>` outside a matrix", "matrix values only in a job with `matrix:`");
      return nullptr;
    }
    for (const auto& [k, val] : *v)
      if (k == name) return &val;
    std::vector<std::string> known;
    for (const auto& [k, val] : *v) known.push_back(k);
    d.error(at, "`<< matrix." + yaml::printable(name) + " >>` names no parameter of this matrix", yaml::join(known));
    return nullptr;
  }
};

// One invocation after expansion, before ordering.
struct Expanded {
  Invocation inv;
  const Raw* raw = nullptr;
  std::string base;  // its name before duplicates were numbered
  std::vector<std::pair<std::string, Mark>> requires_;
};

bool excluded(const Raw& r, const std::vector<size_t>& pick) {
  for (const auto& ex : r.excludes) {
    bool all = true;
    for (const auto& [k, want] : ex) {
      size_t p = 0;
      while (r.params[p].first != k) ++p;  // read_raw checked every key is a parameter
      all = all && r.params[p].second[pick[p]].Scalar() == want;
    }
    if (all) return true;
  }
  return false;
}

// Every invocation `raws` make, matrices expanded, in file order.
std::vector<Expanded> expand(const std::vector<Raw>& raws, Expander& x) {
  std::vector<Expanded> out;
  for (const Raw& r : raws) {
    std::vector<size_t> pick(r.params.size(), 0);
    bool more = true;
    while (more && !x.over_budget) {
      Values values;
      for (size_t p = 0; p < r.params.size(); ++p) values.emplace_back(r.params[p].first, r.params[p].second[pick[p]]);
      if (!r.has_matrix || !excluded(r, pick)) {
        const Values* v = r.has_matrix ? &values : nullptr;
        Expanded e;
        e.raw = &r;
        e.inv.job = r.job;
        e.inv.mark = r.mark;
        e.inv.approval = r.approval;
        if (r.name) {
          if (auto n = x.text(*r.name, v, r.name_mark)) e.inv.name = *n;
        } else {
          e.inv.name = r.job;
          for (const auto& [k, val] : values) e.inv.name += "-" + val.Scalar();
        }
        for (const auto& [req, at] : r.requires_)
          if (auto t = x.text(req, v, at)) e.requires_.emplace_back(*t, at);
        for (const auto& a : r.args) e.inv.arguments.push_back({a.key, x.node(a.value, v, a.mark), a.mark});
        for (const auto& [k, val] : values)
          e.inv.arguments.push_back({k, val, r.param_marks.at(k)});
        if (!r.pre_steps.IsNull()) e.inv.pre_steps = x.node(r.pre_steps, v, r.pre_mark);
        if (!r.post_steps.IsNull()) e.inv.post_steps = x.node(r.post_steps, v, r.post_mark);
        out.push_back(std::move(e));
      }
      // The next combination: the last parameter turns fastest.
      more = false;
      for (size_t p = r.params.size(); p-- > 0;) {
        if (++pick[p] < r.params[p].second.size()) {
          more = true;
          break;
        }
        pick[p] = 0;
      }
    }
  }
  return out;
}

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= kMaxNameBytes && yaml::printable(s) == s;
}

std::string shown(const std::string& s) { return "`" + yaml::printable(s.substr(0, 128)) + (s.size() > 128 ? "...`" : "`"); }

// Names made unique as CircleCI does: every holder of a shared name gets
// `-1`, `-2`... Returns how many held each shared name.
std::map<std::string, size_t> number_duplicates(std::vector<Expanded>& es, const std::string& wf, Diagnostics& d) {
  std::map<std::string, size_t> count;
  for (auto& e : es) e.base = e.inv.name;
  for (const auto& e : es) ++count[e.base];
  std::map<std::string, size_t> seen;
  for (auto& e : es)
    if (count[e.base] > 1) e.inv.name = e.base + "-" + std::to_string(++seen[e.base]);
  std::set<std::string> names;
  for (const auto& e : es) {
    if (!valid_name(e.inv.name)) {
      d.error(e.raw->name ? e.raw->name_mark : e.inv.mark, "the job name " + shown(e.inv.name) + " is not valid",
              "1 to " + std::to_string(kMaxNameBytes) + " bytes of printable text");
      continue;
    }
    if (!names.insert(e.inv.name).second)
      d.error(e.inv.mark, "two jobs in workflow " + shown(wf) + " are called " + shown(e.inv.name), "distinct `name:`s");
  }
  std::erase_if(count, [](const auto& kv) { return kv.second < 2; });
  return count;
}

// requires -> indices into es; errors for names that are no job or several.
std::vector<std::vector<size_t>> resolve(const std::vector<Expanded>& es, const std::map<std::string, size_t>& dup,
                                         const std::string& wf, Diagnostics& d) {
  std::map<std::string, std::vector<size_t>> by_name;
  for (size_t i = 0; i < es.size(); ++i) {
    by_name[es[i].inv.name].push_back(i);
    // A matrix's alias names all of its expansions (that is, every one of
    // them: a `requires` of it waits for the whole matrix).
    if (es[i].raw->has_matrix && es[i].raw->alias != es[i].inv.name) by_name[es[i].raw->alias].push_back(i);
  }
  std::vector<std::vector<size_t>> deps(es.size());
  size_t edges = 0;
  for (size_t i = 0; i < es.size(); ++i) {
    std::set<size_t> mine;
    for (const auto& [req, at] : es[i].requires_) {
      auto it = by_name.find(req);
      if (it == by_name.end()) {
        if (auto dp = dup.find(req); dp != dup.end())
          d.error(at, "job " + shown(es[i].inv.name) + " requires " + shown(req) + ", which is the name of " +
                  std::to_string(dp->second) + " other jobs in workflow " + shown(wf),
                  "give each of them a distinct `name:` and require that");
        else
          d.error(at, "job " + shown(es[i].inv.name) + " requires " + shown(req) + ", which is not a job in workflow " +
                  shown(wf), "the name (or a matrix's alias) of a job in this workflow");
        continue;
      }
      for (size_t j : it->second)
        if (mine.insert(j).second) deps[i].push_back(j);
    }
    edges += deps[i].size();
  }
  if (edges > kMaxWorkflowEdges)
    d.error(es.empty() ? Mark{} : es.front().inv.mark, "workflow " + shown(wf) + " has " + std::to_string(edges) +
            " `requires` between its jobs, more than the limit of " + std::to_string(kMaxWorkflowEdges),
            "fewer dependencies (require a matrix by its alias once, not each job)");
  return deps;
}

// A cycle through the nodes Kahn's algorithm could not order, as names.
std::string describe_cycle(const std::vector<Expanded>& es, const std::vector<std::vector<size_t>>& deps,
                           const std::vector<bool>& done, size_t& first) {
  size_t at = 0;
  while (done[at]) ++at;
  // Walk requirements among the unordered ones until one repeats: every
  // unordered job requires another unordered one.
  std::vector<size_t> path;
  std::map<size_t, size_t> pos;
  while (!pos.count(at)) {
    pos[at] = path.size();
    path.push_back(at);
    for (size_t j : deps[at])
      if (!done[j]) {
        at = j;
        break;
      }
  }
  std::string s;
  first = at;
  for (size_t k = pos[at]; k < path.size(); ++k) s += shown(es[path[k]].inv.name) + " requires ";
  return s + shown(es[at].inv.name);
}

}  // namespace

std::vector<std::string> names(const YAML::Node& workflows, Diagnostics& d) {
  std::vector<std::string> out;
  for (const auto& e : yaml::entries(workflows, d))
    if (e.key != "version") out.push_back(e.key);
  return out;
}

std::optional<Workflow> read(const YAML::Node& workflows, const std::string& name, const ProcessInput& in,
                             Diagnostics& d) {
  if (!yaml::expect_map(workflows, "`workflows`", d)) return std::nullopt;
  std::optional<Entry> found;
  for (auto& e : yaml::entries(workflows, d))
    if (e.key == name && name != "version") found = e;
  if (!found) {
    d.error(yaml::to_mark(workflows.Mark()), "there is no workflow " + shown(name) + " in this file",
            "one of its workflows: " + yaml::join(names(workflows, d)));
    return std::nullopt;
  }
  if (!valid_name(name)) {
    d.error(found->mark, "the workflow name " + shown(name) + " is not valid",
            "1 to " + std::to_string(kMaxNameBytes) + " bytes of printable text");
    return std::nullopt;
  }
  const size_t errors_before = d.all().size();
  auto has_new_errors = [&] {
    for (size_t i = errors_before; i < d.all().size(); ++i)
      if (d.all()[i].severity == Severity::Error) return true;
    return false;
  };
  Workflow wf;
  wf.name = name;
  wf.mark = found->mark;
  auto raws = detail::read_body(*found, wf, d);
  if (!raws || has_new_errors()) return std::nullopt;

  Expander x{d};
  std::vector<Expanded> es = expand(*raws, x);
  if (has_new_errors()) return std::nullopt;
  const auto dup = number_duplicates(es, name, d);
  const auto deps = resolve(es, dup, name, d);
  if (has_new_errors()) return std::nullopt;

  // Dependency order: Kahn's algorithm, taking the earliest written job
  // whose requirements are all placed, so independent jobs keep file order.
  std::vector<size_t> waiting(es.size());
  std::vector<std::vector<size_t>> dependants(es.size());
  for (size_t i = 0; i < es.size(); ++i) {
    waiting[i] = deps[i].size();
    for (size_t j : deps[i]) dependants[j].push_back(i);
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < es.size(); ++i)
    if (waiting[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  std::vector<bool> done(es.size(), false);
  while (!ready.empty()) {
    const size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    done[i] = true;
    for (size_t k : dependants[i])
      if (--waiting[k] == 0) ready.insert(k);
  }
  if (order.size() != es.size()) {
    size_t first = 0;
    const std::string cycle = describe_cycle(es, deps, done, first);
    d.error(es[first].inv.mark, "the jobs of workflow " + shown(name) + " require each other in a cycle: " + cycle,
            "`requires` that lead back to no job");
    return std::nullopt;
  }

  // Filters, in dependency order so a requirement is decided before its
  // dependants: a filtered-out requirement is dropped, and a job whose
  // every requirement is filtered out is filtered out too.
  for (size_t i : order) {
    Invocation& inv = es[i].inv;
    inv.filtered_out = !detail::passes(es[i].raw->filters, in);
    bool any_kept = false;
    for (size_t j : deps[i]) {
      if (es[j].inv.filtered_out) continue;
      any_kept = true;
      inv.needs.push_back(es[j].inv.name);
    }
    if (!deps[i].empty() && !any_kept) inv.filtered_out = true;
  }
  for (size_t i : order) wf.jobs.push_back(std::move(es[i].inv));
  return wf;
}

std::optional<std::pair<Workflow, size_t>> find_invocation(const YAML::Node& workflows, const std::string& name,
                                                           const ProcessInput& in, Diagnostics& d) {
  std::vector<std::string> where = in.workflow ? std::vector<std::string>{*in.workflow} : names(workflows, d);
  for (const auto& w : where) {
    auto wf = read(workflows, w, in, d);
    if (!wf) {
      if (d.has_errors()) return std::nullopt;
      continue;
    }
    for (size_t i = 0; i < wf->jobs.size(); ++i)
      if (wf->jobs[i].name == name) return std::pair{std::move(*wf), i};
  }
  return std::nullopt;
}

}  // namespace gh::job::workflow
