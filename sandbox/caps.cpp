// Capabilities and ids. The order is the point:
//  1. bounding set reduced (to nothing, or to the keep-list below) and
//     ambient cleared while we still hold CAP_SETPCAP (PR_CAPBSET_DROP);
//  2. securebits set and locked (also needs CAP_SETPCAP);
//  3. gid before uid: after setresuid we could no longer change the gid;
//  4. permitted/effective set to the keep-list (usually empty) and
//     inheritable emptied with capset, then every set is read back: if it is
//     not exactly what was asked, the sandbox is not built.
//
// root_in_namespace: the job is uid 0 of its user namespace, mapped to one
// unprivileged pool uid, and keeps kNamespaceRootCaps. Every capability is
// checked against the namespace it was granted in, and for files also
// against the inode's owner: a capability acts only on an inode whose owner
// and group are mapped in the job's namespace. Only the job's pool uid is
// mapped, so these act on the job's own files (workspace, HOME, /tmp, the
// overlay's upper layer) and never on anything the host owns. The list is
// what package managers and build scripts running as root need, and no
// more:
//  - CHOWN, FOWNER, FSETID: dpkg/tar restore owner, mode, times and set-id
//    bits of what they unpack;
//  - DAC_OVERRIDE: root writes and reads its own files whatever their mode
//    (0444 files, 0700 dirs made by packages);
//  - SETUID, SETGID: tools that "switch" to root (su-style wrappers, apt's
//    privilege drop) find the capability; with one id mapped the only id
//    they can reach is 0, and setgroups is denied in the namespace;
//  - KILL: signals to the job's own processes whatever their credentials;
//    all of them are in its namespace.
// Left out on purpose: DAC_READ_SEARCH (DAC_OVERRIDE already reads the
// job's files; the rest of it, open_by_handle_at, is a kernel surface),
// SETFCAP and SETPCAP (file and process capability editing), and everything
// reaching the kernel: SYS_ADMIN, NET_ADMIN, NET_RAW, SYS_PTRACE, MKNOD,
// SYS_CHROOT, SYS_MODULE, SYS_RESOURCE...
//
// How the keep-list survives execve: SECBIT_NOROOT stays off (locked off),
// so the kernel's root rule applies: an exec by uid 0 gets the bounding set
// as permitted and effective. The bounding set is the keep-list,
// no_new_privs caps any gain at what the caller had, inheritable and
// ambient are empty, and ambient raising is locked off. Without
// root_in_namespace NOROOT is locked on and every set is empty.
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

namespace {

constexpr int kNamespaceRootCaps[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
                                      CAP_KILL,  CAP_SETGID,       CAP_SETUID};

uint64_t keep_mask(const SandboxPlan& plan) { return plan.root_in_namespace ? namespace_root_caps() : 0; }

bool in(uint64_t mask, int cap) { return cap < 64 && ((mask >> cap) & 1) != 0; }

int capset_exactly(uint64_t keep) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = static_cast<uint32_t>(keep >> (32 * i));
    data[i].inheritable = 0;
  }
  return syscall(SYS_capset, &hdr, data) == 0 ? 0 : errno;
}

bool sets_are_exactly(uint64_t keep) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  const uint64_t eff = data[0].effective | (uint64_t{data[1].effective} << 32);
  const uint64_t prm = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  const uint64_t inh = data[0].inheritable | (uint64_t{data[1].inheritable} << 32);
  if (eff != keep || prm != keep || inh != 0) return false;
  for (int cap = 0; cap <= 63; ++cap) {
    int b = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (b < 0) break;  // past the kernel's last capability
    if ((b != 0) != in(keep, cap)) return false;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) != 0) return false;
  }
  return true;
}

}  // namespace

uint64_t namespace_root_caps() {
  uint64_t m = 0;
  for (int cap : kNamespaceRootCaps) m |= uint64_t{1} << cap;
  return m;
}

int drop_privileges(const SandboxPlan& plan) {
  // uid 0 keeps capabilities across execve: it must be exactly the
  // root_in_namespace plan, and a root_in_namespace plan must be uid 0.
  const bool root = plan.job_uid == 0 || plan.job_gid == 0;
  if (root != plan.root_in_namespace || (root && (plan.job_uid != 0 || plan.job_gid != 0))) return EINVAL;
  const uint64_t keep = keep_mask(plan);

  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;
    if (in(keep, cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return errno;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return errno;

  const unsigned long bits = (plan.root_in_namespace ? 0 : SECBIT_NOROOT) | SECBIT_NOROOT_LOCKED |
                             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                             SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return errno;

  // setgroups(2) is denied in this namespace (written by the parent); the
  // broker cleared its own supplementary groups before cloning, so none of
  // the host's groups come along.
  if (setresgid(plan.job_gid, plan.job_gid, plan.job_gid) != 0) return errno;
  if (setresuid(plan.job_uid, plan.job_uid, plan.job_uid) != 0) return errno;
  if (int e = capset_exactly(keep); e != 0) return e;

  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != plan.job_uid || e != plan.job_uid || s != plan.job_uid) return EPERM;
  gid_t gr, ge, gs;
  if (getresgid(&gr, &ge, &gs) != 0 || gr != plan.job_gid || ge != plan.job_gid || gs != plan.job_gid) return EPERM;
  if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != static_cast<int>(bits)) return ENOTRECOVERABLE;
  if (!sets_are_exactly(keep)) return ENOTRECOVERABLE;
  return 0;
}

}  // namespace gh::sandbox
