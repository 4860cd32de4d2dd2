// Namespaces. The user namespace is created in the same clone(2) as the
// others, so every other namespace is owned by it: that is what lets an
// unprivileged-in-init-ns broker (no CAP_SYS_ADMIN) mount and pivot inside.
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

pid_t clone_namespaced(bool host_network) {
  // The cgroup namespace is not here on purpose: it is entered by the child
  // after the broker has moved it into the job's cgroup (see entry.cpp).
  // Without CLONE_NEWNET (policy network `host`) the job shares the host's
  // network namespace, owned by the initial user namespace: the job's
  // namespace capabilities give it no power over those interfaces.
  const unsigned long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | (host_network ? 0 : CLONE_NEWNET) |
                              CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  // Raw clone with a null stack behaves like fork(): the broker is single
  // threaded at this point, so the child's copy of the heap is consistent.
  long r = syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0);
  if (r < 0) return -errno;
  return static_cast<pid_t>(r);
}

int enter_cgroup_namespace() { return unshare(CLONE_NEWCGROUP) == 0 ? 0 : errno; }

}  // namespace gh::sandbox
