// Capabilities and ids. The order is the point:
//  1. bounding set emptied and ambient cleared while we still hold
//     CAP_SETPCAP (needed for PR_CAPBSET_DROP);
//  2. securebits set and locked (also needs CAP_SETPCAP): NOROOT means no
//     exec ever regains capabilities; locking means the job cannot unset it;
//  3. gid before uid: after setresuid we could no longer change the gid;
//  4. permitted/effective/inheritable set to empty with capset, then every
//     set is read back: if anything is left, the sandbox is not built.
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

static int capset_empty() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  return syscall(SYS_capset, &hdr, data) == 0 ? 0 : errno;
}

static bool all_sets_empty() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  for (auto& d : data)
    if (d.effective || d.permitted || d.inheritable) return false;
  for (int cap = 0; cap <= 63; ++cap) {
    int b = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (b < 0) break;  // past the kernel's last capability
    if (b != 0) return false;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) > 0) return false;
  }
  return true;
}

int become_job_ids_keeping_caps(const SandboxPlan& plan) {
  // Until the maps were written the child had no id in its namespace, and
  // files it created would be EOVERFLOW. It takes the job's ids now, while
  // keeping its namespace capabilities (SECBIT_NO_SETUID_FIXUP) to build
  // the root; drop_privileges() removes them all before execve.
  if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0) return errno;
  if (setresgid(plan.job_gid, plan.job_gid, plan.job_gid) != 0) return errno;
  if (setresuid(plan.job_uid, plan.job_uid, plan.job_uid) != 0) return errno;
  return 0;
}

int drop_privileges(const SandboxPlan& plan) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return errno;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return errno;

  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                             SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                             SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return errno;

  // setgroups(2) is denied in this namespace (written by the parent); the
  // broker cleared its own supplementary groups before cloning, so none of
  // the host's groups come along.
  if (setresgid(plan.job_gid, plan.job_gid, plan.job_gid) != 0) return errno;
  if (setresuid(plan.job_uid, plan.job_uid, plan.job_uid) != 0) return errno;
  if (int e = capset_empty(); e != 0) return e;

  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != plan.job_uid || e != plan.job_uid || s != plan.job_uid) return EPERM;
  gid_t gr, ge, gs;
  if (getresgid(&gr, &ge, &gs) != 0 || gr != plan.job_gid || ge != plan.job_gid || gs != plan.job_gid) return EPERM;
  if (!all_sets_empty()) return ENOTRECOVERABLE;
  return 0;
}

}  // namespace gh::sandbox
