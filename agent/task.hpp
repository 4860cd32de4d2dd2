// One claimed task, from admission to the acknowledged completion.
#pragma once

#include "agent/serve.hpp"
#include "agent/spool.hpp"

namespace gh::agent {

// Runs the task (unless `recovered`: an earlier agent already ran it and
// only delivery is left), spooling every record before sending it, and
// returns when the control plane acknowledged the completion, gave the
// task up (401/404/410), or the agent is shutting down (the spool then
// keeps what is left for the next start).
void run_task(const ServeOptions& opts, AgentState& state, TaskSpool spool, bool recovered);

}  // namespace gh::agent
