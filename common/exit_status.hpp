// Exit statuses of `gatehouse run` (and of the broker that runs the job):
// the same numbers for the operator's shell, the stream's result record and
// the control plane's completion (DESIGN.md, docs/jobs.md).
#pragma once

namespace gh {

enum Exit : int { kPassed = 0, kStepFailed = 1, kBadInput = 2, kRefused = 3, kInfra = 4 };

}  // namespace gh
