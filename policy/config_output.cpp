// `gatehouse config process` (config_output.hpp).
#include "policy/config_output.hpp"

#include <exception>

#include "common/yaml_util.hpp"
#include "policy/config_process.hpp"

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
  bool found = false;
  for (const auto& [k, v] : jobs->entries) {
    if (in.job_name && *in.job_name != k.name) continue;
    found = true;
    if (auto j = p.job(cfg::JobUse{k.name, {}, k.mark, nullptr, nullptr})) out_jobs->entries.emplace_back(k, j);
  }
  if (in.job_name && !found) {
    std::vector<std::string> names;
    for (const auto& [k, v] : jobs->entries) names.push_back(k.name);
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
  auto e = cfg::emit(*top, cfg::Budget::kMaxBytes);
  if (!e) {
    d.error({}, "the processed config is more than " + std::to_string(cfg::Budget::kMaxBytes >> 20) + " MiB", "less expansion");
    return;
  }
  out.text = "# " + std::string("processed by gatehouse config process; the jobs as gatehouse run runs them\n") + e->text;
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
