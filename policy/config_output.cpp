// `gatehouse config process` (config_output.hpp).
#include "policy/config_output.hpp"

#include <algorithm>
#include <exception>

#include "common/yaml_util.hpp"
#include "policy/config_process.hpp"
#include "policy/workflow.hpp"

namespace gh::job {

namespace {

std::shared_ptr<cfg::Node> map_node() {
  auto m = std::make_shared<cfg::Node>();
  m->kind = cfg::Node::Kind::Map;
  return m;
}

void process(ConfigOutput& out, const std::string& text, const ProcessInput& in) {
  Diagnostics& d = out.diagnostics;
  if (text.size() > kMaxJobFileBytes) {
    d.error({}, "the config is " + std::to_string(text.size()) + " bytes, more than the limit of 1024 KiB", "at most 1 MiB");
    return;
  }
  auto y = yaml::load(text, d);
  if (!y) return;
  if (!y->IsMap()) {
    d.error(yaml::value_mark(*y, {1, 1}), "the top level must be a mapping, found " + yaml::describe(*y), "version:, jobs:, ...");
    return;
  }
  const cfg::NodePtr root = cfg::from_yaml(*y, d);
  const cfg::NodePtr jobs = root->get("jobs");
  if (!jobs || !jobs->is_map()) {
    d.error(jobs ? jobs->mark : Mark{1, 1}, "this config has no `jobs:` mapping", "jobs: NAME: {...}");
    return;
  }
  cfg::Processor p(root, in, d, text);
  auto out_jobs = map_node();
  auto out_workflows = map_node();
  std::vector<std::string> listed;
  auto add = [&](const std::string& name, const cfg::JobUse& use, Mark at) {
    if (std::find(listed.begin(), listed.end(), name) != listed.end()) return;
    listed.push_back(name);
    if (auto j = p.job(use)) out_jobs->entries.emplace_back(cfg::Key{name, at}, j);
  };
  // Jobs by the names workflows give them, with their arguments; a job no
  // workflow runs, by its own name.
  std::vector<std::string> invoked, invocation_names;
  if (y->IsMap() && (*y)["workflows"] && (*y)["workflows"].IsMap()) {
    const YAML::Node wfs = (*y)["workflows"];
    for (const auto& w : workflow::names(wfs, d)) {
      if (in.workflow && *in.workflow != w) continue;
      auto wf = workflow::read(wfs, w, in, d);
      if (!wf) continue;
      auto listing = std::make_shared<cfg::Node>();
      listing->kind = cfg::Node::Kind::List;
      for (const auto& iv : wf->jobs) {
        invoked.push_back(iv.job);
        if (!iv.approval) invocation_names.push_back(iv.name);
        if (iv.filtered_out) continue;
        auto entry = map_node();
        if (iv.approval) entry->entries.emplace_back(cfg::Key{"type", {}}, cfg::scalar("approval", true, {}));
        if (!iv.needs.empty()) {
          auto req = std::make_shared<cfg::Node>();
          req->kind = cfg::Node::Kind::List;
          for (const auto& n : iv.needs) req->items.push_back(cfg::scalar(n, false, {}));
          entry->entries.emplace_back(cfg::Key{"requires", {}}, req);
        }
        auto item = map_node();
        item->entries.emplace_back(cfg::Key{iv.name, iv.mark}, entry);
        listing->items.push_back(item);
        if (iv.approval || (in.job_name && *in.job_name != iv.name)) continue;
        add(iv.name, cfg::use_of(iv, d), iv.mark);
      }
      auto body = map_node();
      body->entries.emplace_back(cfg::Key{"jobs", wf->mark}, listing);
      out_workflows->entries.emplace_back(cfg::Key{w, wf->mark}, body);
    }
  }
  // As CircleCI prints it: the jobs the workflows run (a job no workflow
  // runs is left out, named in a comment); every job when there are none.
  std::vector<std::string> unused;
  for (const auto& [k, v] : jobs->entries) {
    if (in.job_name) {
      if (*in.job_name == k.name) add(k.name, cfg::JobUse{k.name, {}, k.mark, nullptr, nullptr}, k.mark);
    } else if (out_workflows->entries.empty()) {
      add(k.name, cfg::JobUse{k.name, {}, k.mark, nullptr, nullptr}, k.mark);
    } else if (std::find(invoked.begin(), invoked.end(), k.name) == invoked.end()) {
      unused.push_back(k.name);
    }
  }
  if (in.job_name && listed.empty()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : jobs->entries) names.push_back(k.name);
    for (const auto& n : invocation_names)
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    d.error(jobs->mark, "there is no job `" + *in.job_name + "` in this file", "one of: " + yaml::join(names));
  }
  if (!p.needed_orbs().empty()) {
    out.needed_orbs = p.needed_orbs();
    return;
  }
  if (d.has_errors()) return;
  auto top = map_node();
  top->entries.emplace_back(cfg::Key{"version", {}}, cfg::scalar("2", true, {}));
  top->entries.emplace_back(cfg::Key{"jobs", jobs->mark}, out_jobs);
  if (!in.job_name && !out_workflows->entries.empty()) top->entries.emplace_back(cfg::Key{"workflows", {}}, out_workflows);
  auto e = cfg::emit(*top, cfg::Budget::kMaxBytes);
  if (!e) {
    d.error({}, "the processed config is more than " + std::to_string(cfg::Budget::kMaxBytes >> 20) + " MiB", "less expansion");
    return;
  }
  out.text = "# processed by gatehouse config process; the jobs as gatehouse run runs them\n";
  if (!unused.empty()) out.text += "# jobs no workflow runs (gatehouse run --job NAME runs one): " + yaml::join(unused) + "\n";
  out.text += e->text;
}

}  // namespace

ConfigOutput process_config_text(const std::string& display, const std::string& text, const ProcessInput& in) {
  ConfigOutput out{{}, Diagnostics(display, yaml::for_display(text)), {}};
  try {
    process(out, text, in);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while processing the config: ") + e.what(), "");
  }
  return out;
}

}  // namespace gh::job
