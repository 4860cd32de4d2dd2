// CircleCI 2.1 processing (config_process.hpp).
#include "policy/config_process.hpp"

#include <algorithm>
#include <cctype>

#include "common/orb_folder.hpp"
#include "common/yaml_util.hpp"

namespace gh::job::cfg {

namespace {

// Steps the job parser knows (it runs them or refuses them by name).
constexpr std::string_view kBuiltinSteps[] = {
    "run", "checkout", "save_cache", "restore_cache", "persist_to_workspace", "attach_workspace",
    "store_artifacts", "store_test_results", "add_ssh_keys", "setup_remote_docker", "deploy"};

bool builtin(const std::string& k) {
  return std::find(std::begin(kBuiltinSteps), std::end(kBuiltinSteps), k) != std::end(kBuiltinSteps);
}

// Keys an executor gives the job that uses it (the job's own win).
constexpr std::string_view kExecutorKeys[] = {"docker", "machine", "macos", "windows", "resource_class",
                                              "shell", "working_directory", "environment"};

NodePtr list_of(std::vector<NodePtr> items, const Node& like) {
  auto l = std::make_shared<Node>();
  l->kind = Node::Kind::List;
  l->items = std::move(items);
  l->mark = like.mark;
  l->file = like.file;
  l->origin = like.origin;
  return l;
}

}  // namespace

JobUse use_of(const workflow::Invocation& iv, Diagnostics& d) {
  JobUse use;
  use.job = iv.job;
  for (const auto& a : iv.arguments) {
    auto v = from_yaml(a.value, d);
    if (v->mark.line == 0) {  // a matrix value: where the matrix names it
      auto m = std::make_shared<Node>(*v);
      m->mark = a.mark;
      v = m;
    }
    use.arguments.emplace_back(Key{a.key, a.mark}, v);
  }
  use.at = iv.mark;
  if (iv.pre_steps && !iv.pre_steps.IsNull()) use.pre_steps = from_yaml(iv.pre_steps, d);
  if (iv.post_steps && !iv.post_steps.IsNull()) use.post_steps = from_yaml(iv.post_steps, d);
  return use;
}

Processor::Processor(const NodePtr& root, const ProcessInput& in, Diagnostics& d, const std::string& source)
    : in_(in), d_(d), source_(source) {
  pipeline_ = pipeline_values(in.project, in.branch, in.tag, in.revision, in.number, in.id);
  pipeline_decls_ = read_decls(root->get("parameters"), "the pipeline (top-level `parameters:`)", d);
  std::vector<std::pair<Key, NodePtr>> args;
  for (const auto& [k, v] : in.parameters) {
    // Text from the command line: `true` and `3` are a boolean and a number.
    args.emplace_back(Key{k, {}}, scalar(v, true, {}));
  }
  if (auto b = bind(pipeline_decls_, args, "the pipeline (--param)", {}, d)) {
    pipeline_parameters_ = std::move(*b);
  } else {
    // Reported; the declared names still resolve, so that their uses do
    // not each report the same mistake again.
    for (const auto& p : pipeline_decls_)
      pipeline_parameters_[p.name] = p.default_value ? p.default_value : scalar("", false, p.mark);
  }
  config_ = read_scope(root, "", "", 0);
}

std::shared_ptr<Scope> Processor::read_scope(const NodePtr& map, const std::string& what, const std::string& file,
                                             int depth) {
  auto s = std::make_shared<Scope>();
  s->what = what;
  s->file = file;
  s->depth = depth;
  if (!map->is_map()) return s;
  for (const auto& [k, v] : map->entries) {
    std::map<std::string, NodePtr>* table = k.name == "commands" ? &s->commands
                                            : k.name == "executors" ? &s->executors
                                            : k.name == "jobs" ? &s->jobs : nullptr;
    if (table) {
      if (!v->is_map()) {
        error_at(d_, *v, "`" + k.name + "` must be a mapping of names to definitions, found " + describe(*v), "NAME: {...}");
        continue;
      }
      for (const auto& [ek, ev] : v->entries) (*table)[ek.name] = ev;
    } else if (k.name == "orbs") {
      read_orbs(*s, v, depth);
    }
  }
  return s;
}

void Processor::read_orbs(Scope& into, const NodePtr& orbs, int depth) {
  if (orbs->is_null()) return;
  if (!orbs->is_map()) {
    error_at(d_, *orbs, "`orbs` must be a mapping of names to orbs, found " + describe(*orbs), "NAME: namespace/orb@version");
    return;
  }
  if (depth >= kMaxOrbDepth) {
    error_at(d_, *orbs, "orbs nest more than " + std::to_string(kMaxOrbDepth) + " deep", "fewer levels of orbs");
    return;
  }
  for (const auto& [k, raw] : orbs->entries) {
    const std::string alias = yaml::printable(k.name);
    // CircleCI fills pipeline values in here too (`circleci/node@<< pipeline.parameters.v >>`).
    NodePtr v = raw->is_scalar() ? substitute_pipeline(raw) : raw;
    if (!v) continue;
    if (v->is_map()) {
      // An inline orb: its definitions are right here.
      into.orbs[k.name] = read_scope(v, "inline orb `" + alias + "`", v->file, depth + 1);
      into.orb_refs.erase(k.name);
      continue;
    }
    if (!v->is_scalar() || !valid_orb_ref(v->text)) {
      error_at(d_, *v, "orb `" + alias + "` must name an orb as namespace/name@version, found " + describe(*v),
               "e.g. circleci/node@5.1.0 (or @5, @volatile, @dev:LABEL), or an inline orb (a mapping with commands, jobs, executors)");
      continue;
    }
    into.orb_refs[k.name] = v;
  }
}

Scope* Processor::orb(Scope& s, const std::string& alias) {
  if (auto o = s.orbs.find(alias); o != s.orbs.end()) return o->second.get();  // nullptr: failed
  auto r = s.orb_refs.find(alias);
  if (r == s.orb_refs.end()) return nullptr;
  const NodePtr v = r->second;
  const std::string& ref = v->text;
  auto it = std::find_if(in_.orbs.begin(), in_.orbs.end(), [&](const auto& o) { return o.first == ref; });
  if (it == in_.orbs.end()) {
    if (std::find(needed_orbs_.begin(), needed_orbs_.end(), ref) == needed_orbs_.end()) needed_orbs_.push_back(ref);
    return nullptr;
  }
  s.orb_refs.erase(r);  // one report, one load
  s.orbs[alias] = nullptr;  // until it loads: its uses are not reported again
  if (it->second.empty()) {
    error_at(d_, *v, "orb `" + ref + "` is not in the local orb folder " +
             (in_.orb_directory.empty() ? std::string("(none is configured)") : in_.orb_directory) +
             ": this runner does not fetch orbs from the network",
             "put the packed orb (`circleci orb pack`) there as " + ref.substr(0, ref.find('@')) + "@VERSION.yml, or "
             "inline it under `orbs:`");
    return nullptr;
  }
  Diagnostics od(ref, yaml::for_display(it->second));
  auto root = yaml::load(it->second, od);
  NodePtr tree = root ? from_yaml(*root, od, ref) : nullptr;
  if (od.has_errors() || !tree || !tree->is_map()) {
    const std::string why = od.has_errors() ? od.render(od.all().front()) : "the orb is not a mapping";
    error_at(d_, *v, "orb `" + ref + "` from the local orb folder does not parse: " + why, "a packed orb (`circleci orb pack`)");
    return nullptr;
  }
  // Its nodes are marked in its own file; a use in the user's file gives
  // them the user's line (the origin of the command or job).
  auto scope = read_scope(tree, "orb `" + ref + "`", ref, s.depth + 1);
  s.orbs[alias] = scope;
  return scope.get();
}

NodePtr Processor::find(Scope& s, const std::string& name, std::map<std::string, NodePtr> Scope::*table,
                        Scope** owner) {
  const size_t slash = name.find('/');
  if (slash == std::string::npos) {
    auto it = (s.*table).find(name);
    if (it == (s.*table).end()) return nullptr;
    *owner = &s;
    return it->second;
  }
  Scope* o = orb(s, name.substr(0, slash));
  if (!o) return nullptr;
  auto it = (o->*table).find(name.substr(slash + 1));
  if (it == (o->*table).end()) return nullptr;
  *owner = o;
  return it->second;
}

NodePtr Processor::substitute_pipeline(const NodePtr& n) {
  Vars v = vars(nullptr, nullptr, "the pipeline");
  return substitute(n, v, budget_, d_);
}

// The executor a job names, substituted with its arguments.
NodePtr Processor::executor(Scope& s, const NodePtr& ref, const NodePtr& job_body) {
  std::string name;
  std::vector<std::pair<Key, NodePtr>> args;
  if (ref->is_scalar()) {
    name = ref->text;
  } else if (ref->is_map() && ref->get("name") && ref->get("name")->is_scalar()) {
    name = ref->get("name")->text;
    for (const auto& [k, v] : ref->entries)
      if (k.name != "name") args.emplace_back(k, v);
  } else {
    error_at(d_, *ref, "`executor` must name an executor, or be a mapping with `name:` and its parameters; found " +
             describe(*ref), "executor: NAME, or executor: {name: NAME, PARAM: value}");
    return nullptr;
  }
  Scope* owner = nullptr;
  NodePtr def = find(s, name, &Scope::executors, &owner);
  if (!def && !needed_orbs_.empty()) return nullptr;  // asked for: processed again with it
  if (const size_t slash = name.find('/'); !def && slash != std::string::npos) {
    const auto o = s.orbs.find(name.substr(0, slash));
    if (o != s.orbs.end() && !o->second) return nullptr;  // reported where the orb failed to load
  }
  if (!def) {
    std::vector<std::string> names;
    for (const auto& [k, v] : s.executors) names.push_back(k);
    error_at(d_, *ref, "Cannot find a definition for executor named " + yaml::printable(name),
             names.empty() ? std::string("define it under `executors:`, or use `machine: true`") : yaml::join(names));
    return nullptr;
  }
  if (!def->is_map()) {
    error_at(d_, *def, "executor `" + name + "` must be a mapping, found " + describe(*def), "machine: ..., resource_class: ...");
    return nullptr;
  }
  const std::string what = "executor `" + name + "`";
  auto decls = read_decls(def->get("parameters"), what, d_);
  auto bound = bind(decls, args, what, place_of(*ref).mark, d_);
  if (!bound) return nullptr;
  auto body = std::make_shared<Node>(*def);
  body->entries.erase(std::remove_if(body->entries.begin(), body->entries.end(),
                                     [](const auto& e) { return e.first.name == "parameters" || e.first.name == "description"; }),
                      body->entries.end());
  Vars v = vars(&*bound, &decls, what);
  auto out = substitute(body, v, budget_, d_);
  (void)job_body;
  if (!out) return nullptr;
  return with_origin(out, std::make_shared<Origin>(Origin{what, ref->file, ref->mark, ref->origin}));
}

bool Processor::expand_step_arguments(Scope& s, const std::vector<ParamDecl>& decls,
                                      std::vector<std::pair<Key, NodePtr>>& args, int depth,
                                      std::vector<std::string>& stack) {
  bool ok = true;
  for (auto& arg : args) {
    const std::string& name = arg.first.name;
    NodePtr& v = arg.second;
    auto p = std::find_if(decls.begin(), decls.end(), [&](const ParamDecl& d) { return d.name == name; });
    if (p == decls.end() || p->type != ParamType::Steps || !(v->is_list() || v->is_map())) continue;
    std::vector<NodePtr> expanded;
    const NodePtr list = v->is_list() ? v : list_of({v}, *v);
    if (!expand_steps(s, list, expanded, depth + 1, stack)) {
      ok = false;
      continue;
    }
    v = list_of(std::move(expanded), *v);
  }
  return ok;
}

bool Processor::expand_steps(Scope& s, const NodePtr& list, std::vector<NodePtr>& out, int depth,
                             std::vector<std::string>& stack) {
  if (!list->is_list()) {
    if (depth == 0) return true;  // the job's own `steps:`: the job parser says what is wrong
    error_at(d_, *list, "`steps` must be a list, found " + describe(*list), "- checkout, - run: COMMAND");
    return false;
  }
  bool ok = true;
  for (const auto& item : list->items) ok = expand_step(s, item, out, depth, stack) && ok;
  return ok;
}

bool Processor::expand_step(Scope& s, const NodePtr& item, std::vector<NodePtr>& out, int depth,
                            std::vector<std::string>& stack) {
  std::string key;
  NodePtr value;
  if (item->is_scalar()) {
    key = item->text;
    value = null_node(item->mark);
  } else if (item->is_map() && item->entries.size() == 1) {
    key = item->entries.front().first.name;
    value = item->entries.front().second;
  } else {
    out.push_back(item);  // the job parser says what is wrong with it
    return true;
  }
  if (builtin(key)) {
    out.push_back(item);
    // The job parser counts steps; this stops a command that multiplies them.
    if (out.size() > kMaxExpandedSteps) {
      error_at(d_, *item, "the job expands to more than " + std::to_string(kMaxExpandedSteps) + " steps here",
               "at most " + std::to_string(kMaxSteps) + " steps after commands are expanded");
      return false;
    }
    return true;
  }
  if (key == "steps") {
    // `- steps: << parameters.x >>`: a steps parameter's steps, in place.
    if (!value->is_list()) {
      error_at(d_, *value, "a `steps` step takes a list of steps, found " + describe(*value),
               "- steps: << parameters.NAME >> (a parameter of type steps)");
      return false;
    }
    return expand_steps(s, value, out, depth + 1, stack);
  }
  if (key == "when" || key == "unless") {
    NodePtr cond = value->is_map() ? value->get("condition") : nullptr;
    NodePtr steps = value->is_map() ? value->get("steps") : nullptr;
    if (!cond || !steps) {
      error_at(d_, *value, "a `" + key + "` step needs `condition:` and `steps:`", key + ": {condition: ..., steps: [...]}");
      return false;
    }
    for (const auto& [k, v] : value->entries)
      if (k.name != "condition" && k.name != "steps") {
        error_at(d_, *v, "unknown key `" + yaml::printable(k.name) + "` in a `" + key + "` step", "condition, steps");
        return false;
      }
    auto truth = evaluate(cond, d_);
    if (!truth) return false;
    if (*truth != (key == "when")) return true;
    return expand_steps(s, steps, out, depth, stack);
  }
  Scope* owner = nullptr;
  NodePtr def = find(s, key, &Scope::commands, &owner);
  if (!def) {
    if (key.find('/') != std::string::npos) {
      const std::string alias = key.substr(0, key.find('/'));
      if (!needed_orbs_.empty() && s.orb_refs.count(alias)) return true;  // asked for: processed again with it
      if (s.orbs.count(alias) && !s.orbs[alias]) return false;            // reported where it failed to load
      error_at(d_, *item, "Cannot find a definition for command named " + yaml::printable(key) +
               (s.orbs.count(alias) ? " (orb `" + alias + "` has no such command)" : " (no orb `" + alias + "` in `orbs:`)"),
               s.orbs.count(alias) ? "a command the orb defines" : "name the orb under `orbs:`");
      return false;
    }
    out.push_back(item);  // the job parser: "unknown step"
    return true;
  }
  const std::string id = (owner->file.empty() ? owner->what : owner->file) + "\n" + key;
  if (std::find(stack.begin(), stack.end(), id) != stack.end() || depth >= kMaxDepth) {
    std::string chain;
    for (const auto& c : stack) chain += c.substr(c.find('\n') + 1) + " -> ";
    error_at(d_, *item, depth >= kMaxDepth ? "commands nest more than " + std::to_string(kMaxDepth) + " deep here"
                                           : "command `" + key + "` uses itself: " + chain + key,
             "commands that end");
    return false;
  }
  const std::string what = "command `" + key + "`";
  if (!def->is_map() || !def->get("steps")) {
    error_at(d_, *def, what + " must be a mapping with `steps:`", "steps: [...] (and parameters, description)");
    return false;
  }
  std::vector<std::pair<Key, NodePtr>> args;
  if (value->is_map()) args = value->entries;
  else if (!value->is_null()) {
    error_at(d_, *value, what + " takes its arguments as a mapping, found " + describe(*value), "NAME: value");
    return false;
  }
  const Place use = place_of(*item);
  auto decls = read_decls(def->get("parameters"), what, d_);
  // Steps given as arguments are the caller's: their commands are the
  // caller's commands (an orb's command may run steps that name the user's).
  if (!expand_step_arguments(s, decls, args, depth, stack)) return false;
  auto bound = bind(decls, args, what, use.mark, d_);
  if (!bound) return false;
  Vars v = vars(&*bound, &decls, what);
  const size_t before = budget_.nodes;
  auto body = substitute(def->get("steps"), v, budget_, d_);
  if (budget_.spent()) {
    error_at(d_, *item, "expanding " + what + " here passes the limit of " + std::to_string(Budget::kMaxNodes) +
             " nodes or " + std::to_string(Budget::kMaxBytes >> 20) + " MiB", "commands that expand to less");
    return false;
  }
  (void)before;
  if (!body) return false;
  body = with_origin(body, std::make_shared<Origin>(Origin{what, item->file, item->mark, item->origin}));
  stack.push_back(id);
  const bool ok = expand_steps(*owner, body, out, depth + 1, stack);
  stack.pop_back();
  return ok;
}

NodePtr Processor::job(const JobUse& use) {
  Scope* owner = nullptr;
  NodePtr def = find(*config_, use.job, &Scope::jobs, &owner);
  if (!def && !needed_orbs_.empty()) return nullptr;
  if (const size_t slash = use.job.find('/'); !def && slash != std::string::npos) {
    const auto o = config_->orbs.find(use.job.substr(0, slash));
    if (o != config_->orbs.end() && !o->second) return nullptr;  // reported where the orb failed to load
  }
  if (!def) {
    d_.error(use.at, "Cannot find a definition for job named " + yaml::printable(use.job), "a job under `jobs:`");
    return nullptr;
  }
  if (!def->is_map()) return def;  // the job parser says it must be a mapping
  const std::string what = "job `" + use.job + "`";
  if (!owner->file.empty()) def = with_origin(def, std::make_shared<Origin>(Origin{what, "", use.at, nullptr}));
  auto decls = read_decls(def->get("parameters"), what, d_);
  // A workflow's arguments are the workflow's text: pipeline values only.
  std::vector<std::pair<Key, NodePtr>> args;
  for (const auto& [k, v] : use.arguments) {
    NodePtr sv = substitute_pipeline(v);
    if (!sv) return nullptr;
    args.emplace_back(k, sv);
  }
  std::vector<std::string> outer;
  if (!expand_step_arguments(*config_, decls, args, 0, outer)) return nullptr;
  auto bound = bind(decls, args, what, use.at.line > 0 ? use.at : def->mark, d_);
  if (!bound) return nullptr;
  auto body = std::make_shared<Node>(*def);
  body->entries.erase(std::remove_if(body->entries.begin(), body->entries.end(),
                                     [](const auto& e) { return e.first.name == "parameters"; }),
                      body->entries.end());
  Vars v = vars(&*bound, &decls, what);
  NodePtr job = substitute(body, v, budget_, d_);
  if (!job) return nullptr;
  auto out = std::make_shared<Node>(*job);
  // The executor's keys, under the job's own.
  if (NodePtr ref = job->get("executor")) {
    NodePtr ex = executor(*owner, ref, job);
    if (!ex) return nullptr;
    std::vector<std::pair<Key, NodePtr>> merged;
    for (const auto& [k, val] : out->entries) {
      if (k.name == "executor") continue;
      if (k.name == "environment" && ex->get("environment") && ex->get("environment")->is_map() && val->is_map()) {
        auto env = std::make_shared<Node>(*ex->get("environment"));
        for (const auto& var : val->entries) {
          auto it = std::find_if(env->entries.begin(), env->entries.end(),
                                 [&](const auto& e) { return e.first.name == var.first.name; });
          if (it != env->entries.end()) it->second = var.second;
          else env->entries.emplace_back(var);
        }
        merged.emplace_back(k, env);
        continue;
      }
      merged.emplace_back(k, val);
    }
    for (const auto& [k, val] : ex->entries) {
      if (std::find(std::begin(kExecutorKeys), std::end(kExecutorKeys), k.name) == std::end(kExecutorKeys)) {
        const Place p = place_of(k.mark, val->file, val->origin);
        d_.error(p.mark, "unknown key `" + yaml::printable(k.name) + "` in an executor" + p.via,
                 "docker, machine, macos, windows, resource_class, shell, working_directory, environment");
        return nullptr;
      }
      if (!out->get(k.name)) merged.emplace_back(k, val);
    }
    out->entries = std::move(merged);
  }
  std::vector<NodePtr> steps;
  std::vector<std::string> stack;
  bool ok = true;
  // A workflow's pre-steps and post-steps are the workflow's: they are
  // expanded with the config's commands, not the job's orb's.
  auto around = [&](const NodePtr& extra) {
    if (!extra || extra->is_null()) return;
    NodePtr s = substitute_pipeline(extra);
    ok = s && expand_steps(*config_, s, steps, 0, stack) && ok;
  };
  around(use.pre_steps);
  if (NodePtr s = out->get("steps")) ok = expand_steps(*owner, s, steps, 0, stack) && ok;
  around(use.post_steps);
  // After an error the job goes on to the job parser without the steps that
  // failed, so that its errors are reported too (the job is refused anyway).
  (void)ok;
  for (auto& [k, val] : out->entries)
    if (k.name == "steps" && val->is_list()) val = list_of(std::move(steps), *val);
  return out;
}

}  // namespace gh::job::cfg
