// The system calls a policy's `seccomp.allow` may never name, and those it
// may name but `policy check` warns about. One table for the parser, lint
// and docs/policy.md (which copies it by hand: keep the two in step).
#pragma once

#include <string_view>

namespace gh::policy {

struct SyscallNote {
  std::string_view name;
  std::string_view why;
};

// Refused in `seccomp.allow`: each would undo a layer of the sandbox, or is
// filtered by argument in the built-in filter (allowing it whole would drop
// the argument checks).
inline constexpr SyscallNote kSeccompNeverAllowed[] = {
    {"clone", "filtered by argument in the built-in filter (no new namespaces); allowing it whole drops the check"},
    {"clone3", "its flags cannot be checked by seccomp; the built-in filter makes it fail so libc falls back to clone"},
    {"ioctl", "filtered by argument in the built-in filter (no TIOCSTI, no TIOCLINUX); allowing it whole drops the check"},
    {"personality", "filtered by argument in the built-in filter; some personalities weaken ASLR"},
    {"socket", "filtered by argument in the built-in filter (address families); allowing it whole drops the check"},
    {"socketpair", "filtered by argument in the built-in filter (address families); allowing it whole drops the check"},
    {"kexec_load", "replaces the running kernel"},
    {"kexec_file_load", "replaces the running kernel"},
    {"init_module", "loads code into the kernel"},
    {"finit_module", "loads code into the kernel"},
    {"delete_module", "unloads kernel modules"},
    {"reboot", "reboots or halts the host"},
    {"swapon", "changes the host's swap"},
    {"swapoff", "changes the host's swap"},
    {"iopl", "gives direct access to I/O ports"},
    {"ioperm", "gives direct access to I/O ports"},
    {"acct", "switches the host's process accounting"},
    {"settimeofday", "sets the host's clock"},
    {"clock_settime", "sets the host's clock"},
    {"clock_adjtime", "adjusts the host's clock"},
    {"adjtimex", "adjusts the host's clock"},
    {"open_by_handle_at", "opens files by handle, around every path check (the \"shocker\" container escape)"},
    {"name_to_handle_at", "the first half of open_by_handle_at; leaks file handles"},
    {"mount", "changes the job's mounts, which hold the sandbox's read-only and hidden paths"},
    {"umount2", "removes the mounts that hide and protect host paths"},
    {"pivot_root", "changes the job's root file system"},
    {"chroot", "changes the job's root directory"},
    {"setns", "joins other namespaces"},
    {"unshare", "creates new namespaces (a large kernel attack surface)"},
    {"mount_setattr", "changes mount flags such as read-only"},
    {"move_mount", "the new mount API: changes the job's mounts"},
    {"open_tree", "the new mount API: clones mounts"},
    {"fsopen", "the new mount API: creates file system contexts"},
    {"fsmount", "the new mount API: creates mounts"},
    {"fsconfig", "the new mount API: configures file systems"},
    {"fspick", "the new mount API: reconfigures mounted file systems"},
    {"landlock_create_ruleset", "the sandbox applies Landlock itself; jobs do not stack their own"},
    {"landlock_add_rule", "the sandbox applies Landlock itself; jobs do not stack their own"},
    {"landlock_restrict_self", "the sandbox applies Landlock itself; jobs do not stack their own"},
    {"modify_ldt", "an old, bug-prone x86 interface no build needs"},
    {"lookup_dcookie", "profiling interface that reveals kernel path names"},
    {"nfsservctl", "removed from the kernel; nothing may use it"},
    {"vhangup", "hangs up the controlling terminal"},
    {"quotactl", "changes disk quotas"},
    {"quotactl_fd", "changes disk quotas"},
};

// Allowed in `seccomp.allow`, but `policy check` warns: each is a large
// attack surface or lets one process read or steer another.
inline constexpr SyscallNote kSeccompDangerous[] = {
    {"ptrace", "lets the job read and change its own other processes (debuggers need it)"},
    {"process_vm_readv", "reads the memory of the job's other processes"},
    {"process_vm_writev", "writes the memory of the job's other processes"},
    {"perf_event_open", "a large kernel attack surface; can leak kernel addresses"},
    {"bpf", "loads programs into the kernel"},
    {"userfaultfd", "used to widen kernel race windows in exploits"},
    {"io_uring_setup", "io_uring: a large kernel attack surface that bypasses per-syscall filtering"},
    {"io_uring_enter", "io_uring: a large kernel attack surface that bypasses per-syscall filtering"},
    {"io_uring_register", "io_uring: a large kernel attack surface that bypasses per-syscall filtering"},
    {"keyctl", "the kernel keyring: a large attack surface, not namespaced"},
    {"add_key", "the kernel keyring: a large attack surface, not namespaced"},
    {"request_key", "the kernel keyring: a large attack surface, not namespaced"},
    {"kcmp", "compares kernel objects of other processes; leaks kernel state"},
    {"pidfd_getfd", "takes file descriptors from the job's other processes"},
    {"process_madvise", "acts on the memory of the job's other processes"},
};

// The entry for `name`, or nullptr.
constexpr const SyscallNote* seccomp_never_allowed(std::string_view name) {
  for (const auto& s : kSeccompNeverAllowed)
    if (s.name == name) return &s;
  return nullptr;
}
constexpr const SyscallNote* seccomp_dangerous(std::string_view name) {
  for (const auto& s : kSeccompDangerous)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace gh::policy
