// `gatehouse-broker plan`: a workflow's plan for the `gatehouse run
// --workflow` front end, before any of its jobs runs. Like `run`, it reads
// the file as the owner of its folder and has the parse child turn it into
// typed data; it runs nothing, leases nothing and writes no audit record
// (each job of the plan is admitted and audited when it runs).
#include <algorithm>

#include "broker/checkout.hpp"
#include "broker/events.hpp"
#include "broker/job_runner.hpp"
#include "broker/loaders.hpp"
#include "broker/parse_client.hpp"
#include "common/exit_status.hpp"
#include "ipc/broker_messages.hpp"
#include "policy/pipeline_flags.hpp"

namespace gh::broker {

namespace {

// A value the broker puts in a job's environment or hands on as text: one
// line of printable bytes.
bool one_printable_line(const std::string& s, size_t max) {
  return s.size() <= max && std::none_of(s.begin(), s.end(), [](char c) {
           return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
         });
}

int plan(const JobRequest& req, JobEvents& events, RunVerdict& v) {
  auto fail = [&](int code, const std::string& reason, const std::string& shown) {
    v.reason = reason;
    events.diagnostic(shown);
    return code;
  };
  if (!req.workflow) return fail(kBadInput, "no --workflow", "gatehouse: plan needs --workflow NAME\n");
  if (auto why = pipeline_problem(req); !why.empty()) return fail(kBadInput, why, "gatehouse: " + why + "\n");
  // A policy with errors would refuse every job of the plan: say so once,
  // before any of them starts.
  if (req.policy) {
    auto loaded = load_policy(req.policy);
    if (!loaded) return fail(loaded.error().exit_code, loaded.error().reason, loaded.error().diagnostics);
  }
  auto text = read_file_as_owner(req.file, job::kMaxJobFileBytes + 1);
  if (!text) return fail(kBadInput, "the job file " + req.file + " has errors", req.file + ": error: " + text.error().message + "\n");
  job::ProcessInput in = process_input(req);
  in.job_name.reset();
  auto r = parse_job_confined(*text, req.file, in);
  if (!r) return fail(kInfra, r.error().message, "gatehouse: infrastructure error: " + r.error().message + "\n");
  if (!r->needed_orbs.empty()) {
    std::string names;
    for (const auto& o : r->needed_orbs) names += (names.empty() ? "" : ", ") + o;
    const std::string why = "the config names orbs this build cannot load yet: " + names;
    return fail(kBadInput, why, req.file + ": error: " + why + "\n");
  }
  if (!r->plan) return fail(kBadInput, "the job file " + req.file + " has errors", r->diagnostics);
  // The parse child is hostile: its plan is checked as the front end will
  // check it, so a bad one is the parser's fault, not the front end's.
  if (auto why = ipc::plan_problem(*r->plan); !why.empty())
    return fail(kInfra, "the job parser's plan is malformed: " + why,
                "gatehouse: infrastructure error: the job parser's plan is malformed: " + why + "\n");
  events.plan(*r->plan);
  return kPassed;
}

}  // namespace

std::string pipeline_problem(const JobRequest& req) {
  if (!req.flag_problem.empty()) return req.flag_problem;
  job::EnvList seen;
  for (const auto& [k, val] : req.parameters)
    if (auto why = job::add_param(k + "=" + val, seen); !why.empty()) return why;
  if (auto why = job::pipeline_id_problem(req.pipeline_id); !why.empty()) return why;
  if (!one_printable_line(req.revision, 256)) return "--revision must be one line of at most 256 printable bytes";
  if (req.workflow && !one_printable_line(*req.workflow, ipc::kMaxPlanName))
    return "--workflow must be one line of at most " + std::to_string(ipc::kMaxPlanName) + " printable bytes";
  if (req.node_index >= job::kMaxParallelism)
    return "--node-index " + std::to_string(req.node_index) + " is past the last node any job can have (" +
           std::to_string(job::kMaxParallelism - 1) + ")";
  return {};
}

job::ProcessInput process_input(const JobRequest& req) {
  job::ProcessInput in;
  in.job_name = req.job;
  in.workflow = req.workflow;
  in.parameters = req.parameters;
  in.project = req.meta.project;
  in.branch = req.meta.branch;
  in.tag = req.meta.tag;
  in.revision = req.revision;
  in.number = req.pipeline_number;
  in.id = req.pipeline_id;
  in.orb_directory = req.orb_dir;
  return in;
}

int run_plan_request(const JobRequest& req, int client_fd) {
  JobEvents events(client_fd);
  RunVerdict v;
  v.exit_code = plan(req, events, v);
  // Success is the Plan message alone; anything else ends as `run` does.
  if (v.exit_code != kPassed) events.result(v);
  return v.exit_code;
}

}  // namespace gh::broker
