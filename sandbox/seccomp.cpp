// seccomp: loading a compiled filter (seccomp.hpp). Compiling one needs
// libseccomp and lives in seccomp_compile.cpp, so a binary that only loads
// filters it was handed (the sandbox entry) does not carry libseccomp.
#include "sandbox/seccomp.hpp"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace gh::sandbox {

int load_seccomp(const SeccompProgram& prog) {
  if (prog.insns.empty() || prog.insns.size() > BPF_MAXINSNS) return EINVAL;
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(prog.insns.size());
  fprog.filter = const_cast<sock_filter*>(prog.insns.data());
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return errno;
  return 0;
}

}  // namespace gh::sandbox
