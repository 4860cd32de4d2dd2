// The seccomp filter, tested by loading it into a forked child and making
// the calls: each test asserts the exact errno (or the kill) a job sees.
#include <doctest/doctest.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "sandbox/seccomp.hpp"

using gh::sandbox::compile_seccomp;
using gh::sandbox::load_seccomp;
using gh::sandbox::SeccompOptions;
using gh::sandbox::SeccompProgram;

namespace {

const SeccompProgram& default_program() {
  static const SeccompProgram prog = [] {
    auto r = compile_seccomp({});
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return r.value();
  }();
  return prog;
}

constexpr int kSetupFailed = 250;

struct ChildResult {
  int status = 0;
  std::string out;  // what the child wrote to its report pipe

  bool exited() const { return WIFEXITED(status); }
  int code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
  int signal() const { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
};

// Forks; the child sets no_new_privs, loads `prog`, runs fn(report_fd) and
// exits with its return value (an errno, or 0 for success).
template <typename Fn>
ChildResult run_filtered(const SeccompProgram& prog, Fn fn) {
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(kSetupFailed);
    if (load_seccomp(prog) != 0) _exit(kSetupFailed + 1);
    _exit(fn(p[1]));
  }
  close(p[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  REQUIRE(waitpid(pid, &r.status, 0) == pid);
  return r;
}

// The errno of a raw syscall made under the default filter (0 if it worked).
template <typename Call>
int errno_of(Call call) {
  ChildResult r = run_filtered(default_program(), [&](int) {
    errno = 0;
    long rc = call();
    return rc == -1 ? errno : 0;
  });
  REQUIRE_MESSAGE(r.exited(), "child killed by signal " << r.signal());
  REQUIRE(r.code() != kSetupFailed);
  REQUIRE(r.code() != kSetupFailed + 1);
  return r.code();
}

void report(int fd, const std::string& s) {
  [[maybe_unused]] ssize_t n = write(fd, s.data(), s.size());
}

}  // namespace

TEST_CASE("the filter compiles, fits the kernel's limit and loads") {
  const auto& prog = default_program();
  CHECK(prog.insns.size() > 100);
  CHECK(prog.insns.size() <= BPF_MAXINSNS);
  MESSAGE("filter length: " << prog.insns.size() << " instructions");
  CHECK(load_seccomp(SeccompProgram{}) == EINVAL);
}

TEST_CASE("ordinary calls work under the filter") {
  CHECK(errno_of([] { return syscall(SYS_getpid); }) == 0);
  CHECK(errno_of([] { return syscall(SYS_uname, nullptr); }) == EFAULT);  // reached the kernel
  CHECK(errno_of([] {
          int fds[2];
          return static_cast<long>(pipe2(fds, O_CLOEXEC));
        }) == 0);
  // ioctl in general is allowed: FIONREAD on a pipe.
  CHECK(errno_of([] {
          int fds[2], avail = 0;
          if (pipe(fds) != 0) return -1L;
          return syscall(SYS_ioctl, fds[0], FIONREAD, &avail);
        }) == 0);
  // A job may restrict itself further.
  CHECK(errno_of([] {
          uint32_t action = SECCOMP_RET_KILL_PROCESS;
          return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
        }) == 0);
}

TEST_CASE("fork, threads (clone3 falls back to clone) and exec work") {
  CHECK(errno_of([] {
          pid_t pid = fork();
          if (pid == 0) _exit(7);
          int st = 0;
          if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1L;
          return WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0L : (errno = EPROTO, -1L);
        }) == 0);
  CHECK(errno_of([] {
          pthread_t t;
          int rc = pthread_create(&t, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
          if (rc != 0) return (errno = rc, -1L);
          return static_cast<long>(pthread_join(t, nullptr));
        }) == 0);
  // A shell pipeline with coreutils: execve, pipes, dup2, wait4, stat...
  CHECK(errno_of([] {
          pid_t pid = fork();
          if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execl("/bin/sh", "sh", "-c",
                  "set -e; d=$(mktemp -d); echo hi | tr h H > $d/f; grep -q Hi $d/f; "
                  "ls -la / | wc -l; sort </etc/passwd | head -1; rm -r $d",
                  static_cast<char*>(nullptr));
            _exit(127);
          }
          int st = 0;
          if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1L;
          return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0L : (errno = EPROTO, -1L);
        }) == 0);
}

TEST_CASE("python (threads, subprocess, sockets) works under the filter") {
  if (access("/usr/bin/python3", X_OK) != 0) {
    MESSAGE("SKIP: /usr/bin/python3 not installed");
    return;
  }
  CHECK(errno_of([] {
          pid_t pid = fork();
          if (pid == 0) {
            execl("/usr/bin/python3", "python3", "-c",
                  "import threading, subprocess, socket, tempfile, os\n"
                  "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
                  "assert subprocess.run(['true']).returncode == 0\n"
                  "a, b = socket.socketpair(); a.send(b'x'); assert b.recv(1) == b'x'\n"
                  "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
                  "with tempfile.TemporaryDirectory() as d: open(os.path.join(d, 'f'), 'w').write('x')\n",
                  static_cast<char*>(nullptr));
            _exit(127);
          }
          int st = 0;
          if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1L;
          return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0L : (errno = EPROTO, -1L);
        }) == 0);
}

TEST_CASE("kernel attack surface is EPERM") {
  CHECK(errno_of([] { return syscall(SYS_keyctl, 0 /*KEYCTL_GET_KEYRING_ID*/, -1, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_add_key, "user", "x", "y", 1, -2); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_request_key, "user", "x", nullptr, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_bpf, 0, nullptr, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_userfaultfd, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_io_uring_setup, 1, nullptr); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_ptrace, 16 /*PTRACE_ATTACH*/, 0x3fffffff, 0, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_process_vm_readv, 1, nullptr, 0, nullptr, 0, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_pidfd_getfd, 0, 0, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, nullptr); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_umount2, "/proc", 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_pivot_root, "/", "/"); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_chroot, "/"); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_fsopen, "tmpfs", 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_open_tree, AT_FDCWD, "/", 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_unshare, CLONE_NEWUSER); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_unshare, CLONE_NEWNS); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_setns, 0, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_open_by_handle_at, 0, nullptr, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_name_to_handle_at, 0, "", nullptr, nullptr, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_init_module, nullptr, 0, ""); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_finit_module, -1, "", 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_kexec_load, 0, 0, nullptr, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_reboot, 0, 0, 0, nullptr); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_swapon, "/nonexistent", 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_syslog, 3, nullptr, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_iopl, 3); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_sethostname, "x", 1); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_clock_settime, CLOCK_REALTIME, nullptr); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_landlock_create_ruleset, nullptr, 0, 1); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_fanotify_init, 0, 0); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_modify_ldt, 0, nullptr, 0); }) == EPERM);
}

TEST_CASE("clone: namespace flags are EPERM, clone3 is ENOSYS") {
  // If the filter let one through, the new child exits at once.
  auto raw_clone = [](uint64_t flags) {
    return [flags] {
      long rc = syscall(SYS_clone, flags, 0, 0, 0, 0);
      if (rc == 0) _exit(0);
      if (rc > 0) waitpid(static_cast<pid_t>(rc), nullptr, 0);
      return rc > 0 ? 0L : rc;
    };
  };
  CHECK(errno_of(raw_clone(SIGCHLD)) == 0);
  CHECK(errno_of(raw_clone(CLONE_NEWNS | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone(CLONE_NEWUSER | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone(CLONE_NEWPID | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone(CLONE_NEWNET | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone(CLONE_NEWIPC | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone(CLONE_NEWUTS | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone(CLONE_NEWCGROUP | SIGCHLD)) == EPERM);
  CHECK(errno_of(raw_clone((1ULL << 32) | CLONE_NEWUSER | SIGCHLD)) == EPERM);

  CHECK(errno_of([] {
          uint64_t args[11] = {};  // struct clone_args (CLONE_ARGS_SIZE_VER2)
          args[4] = SIGCHLD;        // exit_signal
          long rc = syscall(SYS_clone3, &args, sizeof args);
          if (rc == 0) _exit(0);
          return rc > 0 ? 0L : rc;
        }) == ENOSYS);
}

TEST_CASE("syscalls the filter does not know get ENOSYS") {
  CHECK(errno_of([] { return syscall(1000); }) == ENOSYS);
  CHECK(errno_of([] { return syscall(600); }) == ENOSYS);
}

TEST_CASE("ioctl: TIOCSTI and TIOCLINUX are EPERM, also with high bits set") {
  auto ioctl_on_pipe = [](uint64_t request) {
    return [request] {
      int fds[2];
      if (pipe(fds) != 0) return -1L;
      char c = 'x';
      return syscall(SYS_ioctl, fds[0], request, &c);
    };
  };
  CHECK(errno_of(ioctl_on_pipe(TIOCSTI)) == EPERM);
  CHECK(errno_of(ioctl_on_pipe(TIOCSTI | (1ULL << 32))) == EPERM);
  CHECK(errno_of(ioctl_on_pipe(TIOCSTI | 0xffffffff00000000ULL)) == EPERM);
  CHECK(errno_of(ioctl_on_pipe(TIOCLINUX)) == EPERM);
  CHECK(errno_of(ioctl_on_pipe(TIOCLINUX | (1ULL << 40))) == EPERM);
  // Reached the kernel: a pipe is not a terminal.
  CHECK(errno_of(ioctl_on_pipe(TCGETS)) == ENOTTY);
  CHECK(errno_of(ioctl_on_pipe(TIOCSTI + 1)) == ENOTTY);
  CHECK(errno_of(ioctl_on_pipe(TIOCSTI ^ 0x10000)) == ENOTTY);
  CHECK(errno_of([] { return syscall(SYS_ioctl, 0, TIOCSTI, "x"); }) == EPERM);

  // Every single-bit neighbour of the two requests, and a block around
  // them, reaches the kernel; the two themselves never do.
  ChildResult r = run_filtered(default_program(), [](int fd) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    auto check = [&](uint64_t req) {
      char c = 0;
      long rc = syscall(SYS_ioctl, fds[0], req, &c);
      const bool got_eperm = rc == -1 && errno == EPERM;
      const uint64_t low = req & 0xffffffffULL;
      const bool want_eperm = low == TIOCSTI || low == TIOCLINUX;
      if (got_eperm != want_eperm) {
        char msg[96];
        snprintf(msg, sizeof msg, "ioctl request %#llx: %s\n", static_cast<unsigned long long>(req),
                 want_eperm ? "expected EPERM" : "unexpected EPERM");
        report(fd, msg);
      }
    };
    for (uint64_t base : {uint64_t{TIOCSTI}, uint64_t{TIOCLINUX}}) {
      for (int bit = 0; bit < 64; ++bit) check(base ^ (1ULL << bit));
      check(base);
    }
    for (uint64_t req = 0x5400; req < 0x5460; ++req) {
      if (req == FIOASYNC || req == FIOSETOWN || req == TIOCSPGRP) continue;  // side effects
      check(req);
      check(req | 0xdead000000000000ULL);
    }
    return 0;
  });
  CHECK(r.exited());
  CHECK_MESSAGE(r.out.empty(), r.out);
}

TEST_CASE("personality: only harmless values") {
  CHECK(errno_of([] { return syscall(SYS_personality, 0xffffffffUL); }) == 0);
  CHECK(errno_of([] { return syscall(SYS_personality, 0UL); }) == 0);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x0008UL); }) == 0);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x20000UL); }) == 0);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x20008UL); }) == 0);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x0040000UL /*ADDR_NO_RANDOMIZE*/); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x0400000UL /*READ_IMPLIES_EXEC*/); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x0040000UL | (1ULL << 32)); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_personality, 0xfffffffeUL); }) == EPERM);
  CHECK(errno_of([] { return syscall(SYS_personality, 0x1UL); }) == EPERM);

  // Single-bit neighbours of every allowed value are refused unless they
  // are themselves allowed.
  ChildResult r = run_filtered(default_program(), [](int fd) {
    const uint64_t allowed[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
    auto is_allowed = [&](uint64_t v) {
      for (uint64_t a : allowed)
        if ((v & 0xffffffffULL) == a) return true;
      return false;
    };
    for (uint64_t a : allowed) {
      for (int bit = 0; bit < 64; ++bit) {
        const uint64_t v = a ^ (1ULL << bit);
        long rc = syscall(SYS_personality, v);
        const bool got_eperm = rc == -1 && errno == EPERM;
        if (got_eperm == is_allowed(v)) {
          char msg[96];
          snprintf(msg, sizeof msg, "personality %#llx: %s\n", static_cast<unsigned long long>(v),
                   got_eperm ? "unexpected EPERM" : "expected EPERM");
          report(fd, msg);
        }
        syscall(SYS_personality, 0UL);
      }
    }
    return 0;
  });
  CHECK(r.exited());
  CHECK_MESSAGE(r.out.empty(), r.out);
}

TEST_CASE("socket: only unix/inet/inet6, never raw or packet") {
  auto sock = [](uint64_t family, uint64_t type) {
    return [family, type] { return syscall(SYS_socket, family, type, 0); };
  };
  CHECK(errno_of(sock(AF_INET, SOCK_STREAM)) == 0);
  CHECK(errno_of(sock(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC)) == 0);
  CHECK(errno_of(sock(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK)) == 0);
  CHECK(errno_of(sock(AF_NETLINK, SOCK_RAW)) == EPERM);
  CHECK(errno_of(sock(AF_NETLINK, SOCK_DGRAM)) == EPERM);
  CHECK(errno_of(sock(AF_NETLINK | (1ULL << 32), SOCK_DGRAM)) == EPERM);
  CHECK(errno_of(sock(AF_PACKET, SOCK_RAW)) == EPERM);
  CHECK(errno_of(sock(AF_PACKET, SOCK_DGRAM)) == EPERM);
  CHECK(errno_of(sock(AF_INET, SOCK_RAW)) == EPERM);
  CHECK(errno_of(sock(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK)) == EPERM);
  CHECK(errno_of(sock(AF_INET6, SOCK_RAW)) == EPERM);
  CHECK(errno_of(sock(AF_INET, SOCK_PACKET)) == EPERM);
  CHECK(errno_of(sock(AF_UNIX, SOCK_RAW)) == EPERM);

  // Every family 0..63 and type 0..15: EPERM exactly where the rule says.
  ChildResult r = run_filtered(default_program(), [](int fd) {
    for (int fam = 0; fam < 64; ++fam) {
      for (int type = 0; type < 16; ++type) {
        const bool ok_family = fam == AF_UNIX || fam == AF_INET || fam == AF_INET6;
        const bool ok_type = type != SOCK_RAW && type != SOCK_PACKET;
        const bool want_eperm = !(ok_family && ok_type);
        for (int flags : {0, static_cast<int>(SOCK_CLOEXEC)}) {
          long rc = syscall(SYS_socket, fam, type | flags, 0);
          const bool got_eperm = rc == -1 && errno == EPERM;
          if (rc >= 0) close(static_cast<int>(rc));
          if (got_eperm != want_eperm)
            report(fd, "family " + std::to_string(fam) + " type " + std::to_string(type) +
                           (want_eperm ? ": expected EPERM\n" : ": unexpected EPERM\n"));
        }
      }
    }
    return 0;
  });
  CHECK(r.exited());
  CHECK_MESSAGE(r.out.empty(), r.out);

  auto pair = [](uint64_t family) {
    return [family] {
      int sv[2];
      return syscall(SYS_socketpair, family, SOCK_STREAM, 0, sv);
    };
  };
  CHECK(errno_of(pair(AF_UNIX)) == 0);
  CHECK(errno_of(pair(AF_INET)) == EPERM);
  CHECK(errno_of(pair(AF_NETLINK)) == EPERM);
}

TEST_CASE("foreign ABIs kill the process: x32 and int 0x80") {
  ChildResult x32 = run_filtered(default_program(), [](int) {
    return static_cast<int>(syscall(SYS_getpid | 0x40000000L));
  });
  CHECK_MESSAGE(x32.signal() == SIGSYS, "status " << x32.status);

  ChildResult x32_range = run_filtered(default_program(), [](int) {
    return static_cast<int>(syscall(0x40000000L + 600));
  });
  CHECK_MESSAGE(x32_range.signal() == SIGSYS, "status " << x32_range.status);

  ChildResult i386 = run_filtered(default_program(), [](int) {
    long ret = 20;  // __NR_getpid on i386
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    return 0;
  });
  CHECK_MESSAGE(i386.signal() == SIGSYS, "status " << i386.status);
}

TEST_CASE("policy options: allow_extra, deny_extra (deny wins), unknown names") {
  SeccompOptions opts;
  opts.allow_extra = {"ptrace"};
  auto allowed = compile_seccomp(opts);
  REQUIRE(allowed.ok());
  ChildResult r = run_filtered(*allowed, [](int) {
    long rc = syscall(SYS_ptrace, 16 /*PTRACE_ATTACH*/, 0x3fffffff, 0, 0);
    return rc == -1 ? errno : 0;
  });
  CHECK(r.code() == ESRCH);  // reached the kernel

  opts = {};
  opts.allow_extra = {"getppid"};
  opts.deny_extra = {"getppid", "uname"};
  auto denied = compile_seccomp(opts);
  REQUIRE(denied.ok());
  r = run_filtered(*denied, [](int) {
    if (syscall(SYS_getppid) != -1 || errno != EPERM) return 1;
    if (syscall(SYS_uname, nullptr) != -1 || errno != EPERM) return 2;
    return 0;
  });
  CHECK(r.code() == 0);

  opts = {};
  opts.allow_extra = {"no_such_syscall"};
  auto bad = compile_seccomp(opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("no_such_syscall") != std::string::npos);

  opts = {};
  opts.deny_extra = {"socketcall"};  // i386 only
  bad = compile_seccomp(opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("socketcall") != std::string::npos);
}
