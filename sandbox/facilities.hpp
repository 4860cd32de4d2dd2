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

// namespaces.cpp
// clone(2) into new user, pid, mount, network, ipc and uts namespaces.
// Returns the child's pid in the parent and 0 in the child (fork-like), or
// -errno.
pid_t clone_namespaced();
// Called by the child once it sits in the job's cgroup, so that the cgroup
// namespace is rooted there.
int enter_cgroup_namespace();

// idmap.cpp (parent side): setgroups deny, then one-line uid and gid maps.
Status write_id_maps(pid_t child, const SandboxPlan& plan);

// mounts.cpp (child side)
int make_mounts_private();
int build_root(const SandboxPlan& plan);  // everything under plan.root_dir
int pivot_into(const std::string& root_dir);

// net.cpp (child side): loopback up inside the empty network namespace.
int bring_up_loopback();

// rlimits.cpp (child side)
int apply_rlimits(const SandboxPlan& plan);

// caps.cpp (child side): bounding/ambient/inheritable emptied, securebits
// locked, ids switched, every capability set verified empty.
int drop_privileges(const SandboxPlan& plan);
// Right after the id maps exist: take the job's ids, keep the namespace's
// capabilities for building the root.
int become_job_ids_keeping_caps(const SandboxPlan& plan);

// etc.cpp (broker side): the /etc allowlist and the generated files.
struct EtcIdentity {
  std::string user, home, shell;
  uint32_t uid, gid;
  std::string hostname;
};
void plan_etc(SandboxPlan& plan, const EtcIdentity& who);

}  // namespace gh::sandbox

namespace gh::sandbox {
// The /etc allowlist, for tests and `policy explain`.
const char* const* etc_allowlist_begin();
size_t etc_allowlist_size();
}  // namespace gh::sandbox
