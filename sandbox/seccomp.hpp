// seccomp: compiled with libseccomp (seccomp_compile.cpp: by the parse
// child, for every profile of a policy; by the broker's filter cache until
// that is retired), loaded as the very last step before execve of the
// worker (seccomp.cpp, allocation-free; see sandbox/entry.cpp). Binaries
// that only load link no libseccomp.
//
// Shape of the filter (x86_64 native only):
//  * foreign architecture (int 0x80 / i386) or an x32 call: the process is killed;
//  * an allowlist of syscalls ordinary build jobs need: allowed;
//  * clone3: ENOSYS, so libc falls back to clone, whose flags we can inspect;
//  * every other syscall libseccomp knows: EPERM (explicitly including
//    keyctl/add_key/request_key, bpf, perf_event_open, userfaultfd,
//    io_uring_*, ptrace, process_vm_*, mount family, pivot_root, chroot,
//    unshare, setns, kexec/module/reboot/swap calls, open_by_handle_at);
//  * clone with any namespace flag: EPERM; personality other than the
//    harmless values: EPERM; ioctl TIOCSTI / TIOCLINUX (low 32 bits of the
//    request compared, so high bits cannot smuggle it past): EPERM;
//    socket families other than AF_UNIX/AF_INET/AF_INET6, and raw/packet
//    socket types: EPERM;
//  * syscalls newer than the filter knows (the default action): ENOSYS, so
//    programs probing for new features fall back gracefully.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "common/result.hpp"

namespace gh::sandbox {

struct SeccompOptions {
  std::vector<std::string> allow_extra;  // syscall names moved to the allowlist (policy)
  std::vector<std::string> deny_extra;   // syscall names removed from it (policy)
};

struct SeccompProgram {
  std::vector<sock_filter> insns;  // the compiled BPF program
};

// Compiles the filter into BPF (seccomp_compile.cpp, library
// gh_seccomp_compile). Fails (never weakens) on an unknown name in the
// options or any libseccomp error.
Result<SeccompProgram> compile_seccomp(const SeccompOptions& opts);

// Loads a compiled program into the calling thread (seccomp.cpp, library
// gh_sandbox; requires no_new_privs already set). Allocation-free. Returns
// 0 or an errno value.
int load_seccomp(const SeccompProgram& prog);

}  // namespace gh::sandbox
