// gatehouse-checkout: the checkout copier (docs/architecture.md).
//
//   gatehouse-checkout read DIR    as the work tree's owner: stream to stdout
//   gatehouse-checkout write DIR   as the job's uid: stdin into DIR, summary to stdout
//
// The broker starts both with only fds 0, 1 and 2, no_new_privs, no
// capabilities and an almost empty environment. Each confines itself with
// seccomp before touching hostile bytes: the reader once git has run (it
// needs exec until then), the writer before it reads stdin. Errors go to
// stderr as one line (the broker shows it, bounded); exit 1 is a refusal
// or failure, 2 a usage error, 3 the reader's stream found no one reading.
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>

#include "checkout/copier.hpp"

namespace {

using gh::Status;

int fail(const std::string& message) {
  std::string line = message + "\n";
  (void)!write(2, line.data(), line.size());
  return 1;
}

// What both halves need after confinement: I/O on descriptors they hold,
// opening beneath them (openat2 only, never open/openat), memory, leaving.
// No exec, no sockets, no process creation, no ptrace, no ids.
Status confine(bool writer) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return gh::err("seccomp_init failed");
  struct Free {
    scmp_filter_ctx c;
    ~Free() { seccomp_release(c); }
  } release{ctx};
  static const char* const kBoth[] = {
      "read", "write", "close", "fstat", "newfstatat", "statx", "lseek", "openat2", "fcntl", "dup",
      "mmap", "munmap", "mremap", "brk", "madvise", "futex", "getrandom",
      "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "getpid", "gettid", "tgkill", "exit", "exit_group"};
  static const char* const kReader[] = {"readlinkat", "getdents64"};
  static const char* const kWriter[] = {"mkdirat", "symlinkat"};
  auto allow = [&](const char* name) -> Status {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return gh::ok_status();  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) return gh::err(std::string("seccomp: cannot allow ") + name);
    return gh::ok_status();
  };
  for (const char* n : kBoth)
    if (auto s = allow(n); !s) return s;
  for (const char* n : writer ? kWriter : kReader)
    if (auto s = allow(n); !s) return s;
  if (int rc = seccomp_load(ctx); rc != 0) return gh::err(std::string("seccomp_load: ") + strerror(-rc));
  return gh::ok_status();
}

int read_mode(const std::string& dir) {
  // A write to a writer that stopped reading must come back as EPIPE (exit
  // 3, the writer's own message says why), not kill us unreported.
  signal(SIGPIPE, SIG_IGN);
  auto listing = gh::checkout::list_tree(dir);
  if (!listing) return fail(listing.error().message);
  if (auto s = confine(false); !s) return fail(s.error().message);
  auto res = gh::checkout::stream_tree(*listing, 1);
  switch (res.failure) {
    case gh::checkout::ReadFailure::None: return 0;
    case gh::checkout::ReadFailure::WriterGone: return 3;
    case gh::checkout::ReadFailure::Refused: return fail(res.message);
  }
  return 1;
}

int write_mode(const std::string& dir) {
  umask(022);
  auto fd = gh::checkout::open_staging(dir);
  if (!fd) return fail(fd.error().message);
  if (auto s = confine(true); !s) return fail(s.error().message);
  auto summary = gh::checkout::write_tree(0, fd->get());
  if (!summary) return fail(summary.error().message);
  if (!gh::checkout::write_all(1, gh::checkout::record(gh::checkout::RecordType::Summary, *summary)))
    return fail(std::string("cannot write the summary: ") + strerror(errno));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Not dumpable: no other process of the same uid may ptrace us or read
  // our memory (the job's uid owns no process yet; the tree's owner does).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (argc != 3 || argv[2][0] != '/') {
    std::cerr << "usage: gatehouse-checkout read|write ABSOLUTE-DIR\n";
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  // The end, straight to exit_group: nothing is buffered (errors go to the
  // unbuffered std::cerr, records straight to fd 1), and a test build's
  // sanitizer exit hook would need calls the filter forbids (the leak
  // check stops the world with a ptrace'ing thread).
  if (mode == "read") syscall(SYS_exit_group, read_mode(dir));
  if (mode == "write") syscall(SYS_exit_group, write_mode(dir));
  std::cerr << "usage: gatehouse-checkout read|write ABSOLUTE-DIR\n";
  return 2;
}
