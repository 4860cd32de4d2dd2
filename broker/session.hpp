// The broker's side of the worker channel (ipc/messages.hpp): one job's
// session from the worker's Hello to its JobFinished.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "broker/events.hpp"
#include "ipc/messages.hpp"

namespace gh::broker {

struct SessionOutcome {
  std::vector<StepResult> results;
  bool job_finished = false;      // JobFinished received after every step
  std::string misbehaviour;       // set when the worker broke the protocol
  bool timed_out = false;         // max_run_time hit
  bool interrupted = false;       // the operator's SIGINT/SIGTERM, the client's Cancel, or the client gone
};

// Relays the worker's events to `events` (masked there) until the job
// ends, the worker misbehaves, max_run_time passes or the job is canceled.
// SIGINT and SIGTERM are read from a signalfd while it runs.
SessionOutcome run_session(int channel, const ipc::JobSpec& spec, const std::vector<StepView>& views,
                           JobEvents& events, std::chrono::seconds max_run_time);

}  // namespace gh::broker
