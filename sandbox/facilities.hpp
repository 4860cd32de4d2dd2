// The kernel facilities the sandbox is built from, one source file each.
// Child-side functions run in the cloned child between clone and execve:
// they return 0 or an errno value and never allocate more than small
// strings; entry.cpp turns a failure into a reported, fatal setup error.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.hpp"
#include "sandbox/sandbox.hpp"

namespace gh::sandbox {

// entry.cpp: gatehouse-sandbox's checklist (its main), run in the clone
// child after spawn.cpp's hand-off; never returns.
[[noreturn]] int entry_main();

// namespaces.cpp
// clone(2) into new user, pid, mount, network, ipc and uts namespaces.
// Returns the child's pid in the parent and 0 in the child (fork-like), or
// -errno. host_network: no new network namespace (policy network `host`).
pid_t clone_namespaced(bool host_network);
// Called by the child once it sits in the job's cgroup, so that the cgroup
// namespace is rooted there.
int enter_cgroup_namespace();

// idmap.cpp (parent side): setgroups deny, then one-line uid and gid maps.
Status write_id_maps(pid_t child, const SandboxPlan& plan);

// mounts.cpp (child side)
int make_mounts_private();
// Everything under plan.root_dir. On failure `step` names the part that
// failed ("overlay /usr", "bind /etc/ssl/certs"...) for the setup report.
int build_root(const SandboxPlan& plan, std::string& step);
int pivot_into(const std::string& root_dir);

// overlay.cpp: policy filesystem.root `overlay`.
// Whether a host directory bound at its own path becomes an overlay in
// overlay mode (the tool trees, the /etc allowlist's directories, the
// package manager's state). The sandbox, not the broker, holds this list:
// a plan can never turn another host path (the workspace, a read_write
// path) into an overlay.
bool is_overlay_tree(const std::string& host);
// host_trees.cpp: the package manager's state trees (/var/lib/dpkg...).
bool is_state_tree(const std::string& host);
// Child side. The upper layers live on one tmpfs of plan.overlay_bytes,
// mounted on a staging dir under the new root while it is built, owned by
// the job; /etc and /var of the job are bound from it too.
struct OverlayStage {
  std::string dir;      // the staging mount point
  unsigned trees = 0;   // overlays made so far (names their upper dirs)
};
int overlay_stage_open(const SandboxPlan& plan, OverlayStage& stage);
// Twins every directory of `host` into a new upper layer (owned by the
// job, so merged directories are the job's) and mounts the overlay on
// `target` (which must exist) with `flags`.
int overlay_tree(OverlayStage& stage, const std::string& host, const std::string& target, unsigned long flags);
// Detaches the staging mount (the overlays and binds keep the tmpfs).
int overlay_stage_close(OverlayStage& stage);

// net.cpp (child side): loopback up inside the empty network namespace.
int bring_up_loopback();

// rlimits.cpp (child side)
int apply_rlimits(const SandboxPlan& plan);

// caps.cpp (child side): bounding/ambient/inheritable emptied (or, for
// plan.root_in_namespace, reduced to the namespace-root keep-list),
// securebits locked, ids switched, every capability set verified.
int drop_privileges(const SandboxPlan& plan);
// etc.cpp (broker side): the /etc allowlist and the generated files.
struct EtcIdentity {
  std::string user, home, shell;
  uint32_t uid, gid;
  std::string hostname;
};
void plan_etc(SandboxPlan& plan, const EtcIdentity& who);

// caps.cpp: the capabilities a root_in_namespace job keeps, as a mask of
// CAP_* bits (for tests and `policy explain`).
uint64_t namespace_root_caps();

}  // namespace gh::sandbox

namespace gh::sandbox {
// The /etc allowlist, for tests and `policy explain`.
const char* const* etc_allowlist_begin();
size_t etc_allowlist_size();
}  // namespace gh::sandbox
