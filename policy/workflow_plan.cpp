// `gatehouse run FILE --workflow W`: the plan the front end runs, made in
// the parse child from the config (workflow.hpp). Only the workflow's shape
// is decided here; each job is parsed (and its parameters applied) when it
// runs, by name, like `--job NAME --workflow W`.
#include <algorithm>
#include <exception>

#include "policy/config_process.hpp"
#include "policy/workflow.hpp"

namespace gh::job {

namespace {

using yaml::Entry;

// The job's `parallelism:` when it is written as a whole number; 1 when it
// is not there or comes from a parameter (the job's own run reports the
// real count: the front end runs the other nodes then).
uint32_t literal_parallelism(const YAML::Node& job, Diagnostics& d) {
  if (!job.IsMap()) return 1;
  for (const auto& e : yaml::entries(job, d)) {
    if (e.key != "parallelism" || !e.value.IsScalar() || e.value.Tag() != "?") continue;
    const std::string& s = e.value.Scalar();
    if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return 1;
    const unsigned long n = std::stoul(s);
    if (n < 1 || n > kMaxParallelism) {
      d.error(yaml::value_mark(e.value, e.mark), "`parallelism: " + s + "` is outside what this runner runs",
              "1 to " + std::to_string(kMaxParallelism) + " nodes");
      return 1;
    }
    return static_cast<uint32_t>(n);
  }
  return 1;
}

void plan_into(ParseOutcome& out, const std::string& text, const ProcessInput& in) {
  Diagnostics& d = out.diagnostics;
  if (text.size() > kMaxJobFileBytes) {
    d.error({}, "the job file is " + std::to_string(text.size()) + " bytes, more than the limit of " +
            std::to_string(kMaxJobFileBytes / 1024) + " KiB", "job files of at most 1 MiB");
    return;
  }
  auto root = yaml::load(text, d);
  if (!root) return;
  if (!root->IsMap()) {
    d.error(yaml::value_mark(*root, {1, 1}), "the top level must be a mapping, found " + yaml::describe(*root),
            "a CircleCI config with `workflows:`");
    return;
  }
  std::optional<Entry> workflows, jobs, orbs;
  for (auto& e : yaml::entries(*root, d)) {
    if (e.key == "workflows") workflows = e;
    else if (e.key == "jobs") jobs = e;
    else if (e.key == "orbs") orbs = e;
  }
  if (!workflows) {
    d.error(yaml::to_mark(root->Mark()), "this file has no `workflows:`, so there is no workflow `" +
            yaml::printable(*in.workflow) + "` to run", "a CircleCI config with `workflows:`, or --job without --workflow");
    return;
  }
  auto wf = job::workflow::read(workflows->value, *in.workflow, in, d);
  if (!wf) return;
  std::vector<Entry> defined;
  if (jobs && jobs->value.IsMap()) defined = yaml::entries(jobs->value, d);
  std::vector<std::string> orb_names;
  if (orbs && orbs->value.IsMap())
    for (const auto& o : yaml::entries(orbs->value, d)) orb_names.push_back(o.key);

  WorkflowPlan plan;
  plan.name = wf->name;
  for (const auto& inv : wf->jobs) {
    if (inv.filtered_out) {
      plan.filtered_out.push_back(inv.name);
      continue;
    }
    WorkflowJob j{inv.name, inv.needs, 1, inv.approval};
    if (!inv.approval) {
      auto def = std::find_if(defined.begin(), defined.end(), [&](const Entry& e) { return e.key == inv.job; });
      const size_t slash = inv.job.find('/');
      if (def != defined.end()) {
        j.parallelism = literal_parallelism(def->value, d);
      } else if (slash == std::string::npos ||
                 std::find(orb_names.begin(), orb_names.end(), inv.job.substr(0, slash)) == orb_names.end()) {
        std::vector<std::string> names;
        for (const auto& e : defined) names.push_back(yaml::printable(e.key));
        d.error(inv.mark, "workflow `" + yaml::printable(wf->name) + "` runs job `" + yaml::printable(inv.job) +
                "`, which `jobs:` does not define", names.empty() ? std::string("jobs defined under `jobs:`")
                : "one of: " + yaml::join(names));
        continue;
      }
    }
    plan.jobs.push_back(std::move(j));
  }
  // `when`/`unless` of the workflow: logic statements over pipeline values.
  // A workflow that does not run is a plan with every job left out.
  for (const auto* cond : {&wf->when, &wf->unless}) {
    if (!*cond || d.has_errors()) continue;
    cfg::Processor p(cfg::from_yaml(*root, d), in, d, text);
    auto node = cfg::from_yaml((*cond)->value, d);
    auto v = p.substitute_pipeline(node);
    auto truth = v ? cfg::evaluate(v, d) : std::nullopt;
    if (!truth) continue;
    if (*truth != (cond == &wf->when)) {
      for (const auto& j : plan.jobs) plan.filtered_out.push_back(j.name);
      plan.jobs.clear();
    }
  }
  if (!d.has_errors()) out.plan = std::move(plan);
}

}  // namespace

ParseOutcome plan_workflow_text(const std::string& display, const std::string& text, const ProcessInput& in) {
  ParseOutcome out{std::nullopt, Diagnostics(display, yaml::for_display(text)), {}, {}, {}, false};
  try {
    if (in.workflow) plan_into(out, text, in);
    else out.diagnostics.error({}, "no workflow was named", "--workflow NAME");
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while reading the workflow: ") + e.what(), "");
  } catch (...) {
    out.diagnostics.error({}, "internal error while reading the workflow", "");
  }
  if (out.diagnostics.has_errors()) out.plan.reset();
  return out;
}

}  // namespace gh::job
