// Turning a parsed job and a profile into the two things the sandbox
// needs: the SandboxPlan (mounts, ids, limits, filters) and the JobSpec the
// worker runs. Pure computation over already-validated input: the only
// host access is looking at which host paths exist.
#pragma once

#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/events.hpp"
#include "broker/checkout.hpp"
#include "common/result.hpp"
#include "ipc/messages.hpp"
#include "policy/job.hpp"
#include "policy/profile.hpp"
#include "sandbox/sandbox.hpp"

namespace gh::broker {

struct JobContext {
  std::string job_id;           // the audit log's id of this run (names $BASH_ENV)
  uint32_t node_index = 0;      // CIRCLE_NODE_INDEX; CIRCLE_NODE_TOTAL is the job's parallelism
  std::string revision;         // --revision: CIRCLE_SHA1 (else the checkout's HEAD)
  uint32_t host_uid = 0;
  JobDir dir;
  CheckoutInfo checkout;        // empty when the job has no checkout step
  std::string worker_path;      // host path of gatehouse-worker
  std::string entry_path;       // host path of gatehouse-sandbox
  std::vector<std::string> broker_env;  // the broker's environment (for `pass`)
  sandbox::SeccompProgram seccomp;      // compiled before anything forks
  // Secrets the profile exposes as environment variables (name, value):
  // set last, over everything, and removed by nothing.
  std::vector<std::pair<std::string, std::string>> secret_env;
};

// The job's working directory in its own view ("~/project" resolved).
std::string resolve_working_directory(const job::Job& job, const policy::Profile& p);

Result<sandbox::SandboxPlan> make_sandbox_plan(const job::Job& job, const policy::Profile& p, const JobContext& ctx);

struct WorkerJob {
  ipc::JobSpec spec;
  std::vector<StepView> views;
};
WorkerJob make_worker_job(const job::Job& job, const policy::Profile& p, const JobContext& ctx);

}  // namespace gh::broker
