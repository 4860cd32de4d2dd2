// One claimed task, from the broker's first event to the acknowledged
// completion.
#pragma once

#include "agent/serve.hpp"
#include "agent/spool.hpp"

namespace gh::agent {

enum class TaskStart {
  Fresh,    // just claimed: ask the broker to run it
  Attach,   // an earlier agent asked; the broker still holds its events
  Deliver,  // only delivery is left (or the job ended with the broker)
};

// Spools every job event before acknowledging it to the broker, sends the
// records in batches with heartbeats, and returns when the control plane
// acknowledged the completion, gave the task up (401/404/410), or the agent
// is shutting down (the spool then keeps what is left for the next start).
void run_task(const ServeOptions& opts, AgentState& state, TaskSpool spool, TaskStart how);

// A task the agent cannot deliver (the control plane gave it up, or no
// spool holds it): what the broker sends of it until its Result is
// acknowledged and dropped, so the broker can let it go (at most 60 s).
void discard_task_events(BrokerLink& link, const std::string& task_id);

}  // namespace gh::agent
