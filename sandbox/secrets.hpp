// /run/secrets inside the job (child side; see sandbox/secrets.cpp).
#pragma once

#include "sandbox/sandbox.hpp"

namespace gh::sandbox {

// Mounts a small tmpfs at <plan.root_dir>/run/secrets holding
// plan.secret_files (each 0400, owned by the caller's uid, which must be
// plan.job_uid), directory 0500, then makes it read-only. Does nothing when
// there are no secret files. Call it from build_root while the new root is
// still writable (before its final read-only remount) and before
// pivot_root. Returns 0 or an errno value.
int mount_secrets(const SandboxPlan& plan);

}  // namespace gh::sandbox
