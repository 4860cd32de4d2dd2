/* gatehouse-probe: tries one forbidden thing and says what happened.
 *
 * Usage: gatehouse-probe NAME [ARGS...]
 *
 * A hostile job runs this inside the sandbox (see README.md). For each probe
 * it prints
 *     probe NAME: attempting
 * before the attempt (so a harness can tell "the attempt ran and was
 * refused" from "the probe never got that far"), then exactly one of
 *     probe NAME: result=OK            the forbidden thing worked
 *     probe NAME: result=<ERRNO-NAME>  it failed with that errno (EPERM...)
 * and exits 0 either way: the test decides which result is expected. Some
 * probes print extra "probe NAME: key=value" lines before the result.
 * Usage errors exit 2. Probes that must kill the process (x32, int80) print
 * "attempting" and nothing more when the sandbox works.
 *
 * Like bubblewrap's tests/try-syscall.c, but covering the whole sandbox:
 * seccomp, namespaces, capabilities, Landlock, mounts, cgroups. Built
 * static, so it runs in a job with no library dependencies; it therefore
 * avoids everything in glibc that needs NSS (getaddrinfo, getpwnam):
 * addresses are numeric.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/tiocl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

/* ---- output: one write(2) per line, so forks never duplicate buffers ---- */

const char *current_probe = "?";

void say(const char *fmt, ...) {
  char line[1024];
  int n = snprintf(line, sizeof line, "probe %s: ", current_probe);
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += w;
  }
}

const char *errname(int e) {
  static char buf[32];
  if (e == 0) return "OK";
  const char *s = strerrorname_np(e);
  if (s != NULL) return s;
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

void result(int e) { say("result=%s", errname(e)); }

/* 0 when a syscall-style return value is success, else errno. */
int rc_errno(long rc) { return rc < 0 ? errno : 0; }

int parse_long(const char *s, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0') return -1;
  *out = v;
  return 0;
}

int parse_fd(const char *s) {
  long v;
  if (parse_long(s, &v) != 0 || v < 0 || v > INT_MAX) return -1;
  return (int)v;
}

/* Reaps a child created by a probe; the exit status does not matter. */
void reap(pid_t pid) {
  while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
  }
}

/* ---- filesystem: mount plan, Landlock, read-only binds ---- */

/* Host files the job must not see, and the workspace it must. */
int probe_read_file(char **argv) {
  int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char c;
  int e = rc_errno(read(fd, &c, 1));
  close(fd);
  return e;
}

/* Read-only binds, Landlock write rights. Appends, never truncates. */
int probe_write_file(char **argv) {
  int fd = open(argv[0], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  static const char text[] = "gatehouse-probe\n";
  int e = rc_errno(write(fd, text, sizeof text - 1));
  close(fd);
  return e;
}

int probe_mkdir(char **argv) { return rc_errno(mkdir(argv[0], 0755)); }

/* ---- credentials ---- */

/* The job must not become root, in the namespace or outside it. */
int probe_setuid0(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_setuid, 0));
}

int probe_setgid0(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_setgid, 0));
}

/* Any other id: only one id (the job's) is mapped in its namespace, so
 * even a job that is root there gets EINVAL for every other one. */
int probe_setuid(char **argv) {
  long id;
  if (parse_long(argv[0], &id) != 0 || id < 0) return EINVAL;
  return rc_errno(syscall(SYS_setuid, id));
}

int probe_setgid(char **argv) {
  long id;
  if (parse_long(argv[0], &id) != 0 || id < 0) return EINVAL;
  return rc_errno(syscall(SYS_setgid, id));
}

/* Ownership and modes: capabilities never act on a file whose owner is
 * unmapped (the host's), and no id outside the mapping can be given. */
int probe_chown(char **argv) {
  long uid, gid;
  if (parse_long(argv[1], &uid) != 0 || parse_long(argv[2], &gid) != 0) return EINVAL;
  return rc_errno(fchownat(AT_FDCWD, argv[0], (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW));
}

int probe_chmod(char **argv) {
  long mode;
  if (parse_long(argv[1], &mode) != 0 || mode < 0) return EINVAL;
  return rc_errno(chmod(argv[0], (mode_t)mode));
}

/* Capabilities beyond what the job holds cannot be gained: capset may only
 * drop, and ambient raising is locked off. Reports the effective set
 * before the attempt. */
int probe_cap_raise(char **argv) {
  long cap;
  if (parse_long(argv[0], &cap) != 0 || cap < 0 || cap > 63) return EINVAL;
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return errno;
  say("effective=%08x%08x", data[1].effective, data[0].effective);
  data[cap / 32].effective |= 1u << (cap % 32);
  data[cap / 32].permitted |= 1u << (cap % 32);
  return rc_errno(syscall(SYS_capset, &hdr, data));
}

int probe_ambient_raise(char **argv) {
  long cap;
  if (parse_long(argv[0], &cap) != 0 || cap < 0 || cap > 63) return EINVAL;
  return rc_errno(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0));
}

/* A setuid binary must not raise privileges (no_new_privs, nosuid).
 * Reports the executed program's uids as the kernel sees them: read from
 * /proc/PID/status once the exec has happened (after it exits, from the
 * zombie; if it keeps running, after 2 s). Exec errors come back on a
 * close-on-exec pipe. */
int probe_exec_setuid(char **argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return errno;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    close(p[0]);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execv(argv[0], argv);
    int e = errno;
    if (write(p[1], &e, sizeof e) < 0) _exit(127);
    _exit(127);
  }
  close(p[1]);
  int exec_err = 0;
  ssize_t n;
  while ((n = read(p[0], &exec_err, sizeof exec_err)) < 0 && errno == EINTR) {
  }
  close(p[0]);
  if (n > 0) {
    reap(pid);
    return exec_err;
  }
  /* Exec done. Wait (without reaping) for it to exit, up to 2 s. */
  for (int i = 0; i < 200; ++i) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | WNOHANG) == 0 && si.si_pid == pid) break;
    usleep(10000);
  }
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t len = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  int e = len < 0 ? errno : 0;
  if (fd >= 0) close(fd);
  kill(pid, SIGKILL);
  reap(pid);
  if (len < 0) return e;
  buf[len] = '\0';
  const char *uid = strstr(buf, "\nUid:");
  long ruid = -1, euid = -1;
  if (uid == NULL || sscanf(uid, "\nUid: %ld %ld", &ruid, &euid) != 2) return EPROTO;
  say("uid=%ld euid=%ld", ruid, euid);
  return 0;
}

/* Capability sets, no_new_privs and seccomp mode as the kernel reports
 * them: everything must be dropped, NoNewPrivs 1, Seccomp 2. */
int probe_caps(char **argv) {
  (void)argv;
  FILE *f = fopen("/proc/self/status", "re");
  if (f == NULL) return errno;
  static const char *const keys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                     "NoNewPrivs", "Seccomp", "Seccomp_filters"};
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    char *colon = strchr(line, ':');
    if (colon == NULL) continue;
    *colon = '\0';
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; ++i) {
      if (strcmp(line, keys[i]) != 0) continue;
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') ++v;
      v[strcspn(v, "\n")] = '\0';
      say("%s=%s", line, v);
    }
  }
  fclose(f);
  return 0;
}

/* ---- mounts and namespaces ---- */

/* A job that can mount can hide or replace what the sandbox set up. */
int probe_mount(char **argv) {
  (void)argv;
  if (mkdir("/tmp/x", 0755) != 0 && errno != EEXIST) say("note=mkdir /tmp/x failed: %s", errname(errno));
  return rc_errno(mount("tmpfs", "/tmp/x", "tmpfs", 0, "size=1m"));
}

/* Unmounting /proc (or anything) would reveal what is under it. */
int probe_umount(char **argv) {
  (void)argv;
  return rc_errno(umount2("/proc", MNT_DETACH));
}

/* New user namespaces are the gateway to most kernel attack surface. */
int probe_unshare_user(char **argv) {
  (void)argv;
  return rc_errno(unshare(CLONE_NEWUSER));
}

int probe_unshare_mount(char **argv) {
  (void)argv;
  return rc_errno(unshare(CLONE_NEWNS));
}

int probe_unshare_net(char **argv) {
  (void)argv;
  return rc_errno(unshare(CLONE_NEWNET));
}

/* Joining another namespace. When the ns file cannot be opened, say so and
 * try setns on an invalid fd: EBADF means the call reached the kernel. */
int probe_setns(char **argv) {
  const char *path = argv[0] != NULL ? argv[0] : "/proc/self/ns/net";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) say("note=open %s failed: %s; trying setns on an invalid fd", path, errname(errno));
  int e = rc_errno(setns(fd, 0));
  if (fd >= 0) close(fd);
  return e;
}

int probe_pivot_root(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_pivot_root, "/", "/"));
}

int probe_chroot(char **argv) {
  (void)argv;
  return rc_errno(chroot("/"));
}

/* Raw clone with a namespace flag (glibc would use clone3 first). */
int probe_clone_newns(char **argv) {
  (void)argv;
  long rc = syscall(SYS_clone, (unsigned long)(CLONE_NEWNS | SIGCHLD), 0L, 0L, 0L, 0L);
  if (rc == 0) _exit(0);
  if (rc < 0) return errno;
  reap((pid_t)rc);
  return 0;
}

/* clone3 passes its flags in memory where seccomp cannot check them; the
 * filter answers ENOSYS so libc falls back to clone. */
int probe_clone3(char **argv) {
  (void)argv;
  uint64_t args[11]; /* struct clone_args, CLONE_ARGS_SIZE_VER2 */
  memset(args, 0, sizeof args);
  args[4] = SIGCHLD; /* exit_signal */
  long rc = syscall(SYS_clone3, args, sizeof args);
  if (rc == 0) _exit(0);
  if (rc < 0) return errno;
  reap((pid_t)rc);
  return 0;
}

/* ---- ptrace and other processes ---- */

/* pid 1 in the job is the worker, which talks to the broker. */
int probe_ptrace_pid1(char **argv) {
  (void)argv;
  if (syscall(SYS_ptrace, PTRACE_ATTACH, 1, 0, 0) != 0) return errno;
  waitpid(1, NULL, __WALL);
  syscall(SYS_ptrace, PTRACE_DETACH, 1, 0, 0);
  return 0;
}

/* Even our own child: ptrace is refused outright. */
int probe_ptrace_child(char **argv) {
  (void)argv;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    for (;;) pause();
  }
  int e = rc_errno(syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0));
  kill(pid, SIGKILL);
  reap(pid);
  return e;
}

/* The other direction: a child asks to be traced by us. */
int probe_ptrace_traceme(char **argv) {
  (void)argv;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) _exit(syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0) == 0 ? 0 : errno);
  int st = 0;
  while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : EPROTO;
}

/* Secrets in other processes' environment or command line (the runner
 * token, another job's secrets). STRING may be given as hex:414243 so the
 * string itself never appears in this job's own command lines. */
int probe_find_string_in_proc(char **argv) {
  char needle[512];
  size_t nlen = 0;
  const char *s = argv[0];
  if (strncmp(s, "hex:", 4) == 0) {
    s += 4;
    size_t hl = strlen(s);
    if (hl % 2 != 0 || hl / 2 > sizeof needle) return EINVAL;
    for (size_t i = 0; i < hl; i += 2) {
      char byte[3] = {s[i], s[i + 1], '\0'};
      if (!isxdigit((unsigned char)byte[0]) || !isxdigit((unsigned char)byte[1])) return EINVAL;
      needle[nlen++] = (char)strtol(byte, NULL, 16);
    }
  } else {
    nlen = strlen(s);
    if (nlen > sizeof needle) return EINVAL;
    memcpy(needle, s, nlen);
  }
  if (nlen == 0) return EINVAL;

  DIR *d = opendir("/proc");
  if (d == NULL) return errno;
  static char buf[1 << 20];
  long scanned = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    long pid;
    if (parse_long(de->d_name, &pid) != 0 || pid == getpid()) continue;
    int any = 0;
    static const char *const files[] = {"environ", "cmdline"};
    for (size_t i = 0; i < 2; ++i) {
      char path[64];
      snprintf(path, sizeof path, "/proc/%ld/%s", pid, files[i]);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      size_t len = 0;
      ssize_t n;
      while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0) len += (size_t)n;
      close(fd);
      any = 1;
      if (memmem(buf, len, needle, nlen) != NULL) {
        closedir(d);
        say("found in /proc/%ld/%s", pid, files[i]);
        say("result=FOUND pid=%ld", pid);
        return PRINTED;
      }
    }
    scanned += any;
  }
  closedir(d);
  say("result=NOTFOUND scanned=%ld", scanned);
  return PRINTED;
}

/* ---- the table ---- */

struct probe {
  const char *name;
  const char *args;  /* usage text */
  int min_args;
  int max_args;
  int (*fn)(char **argv); /* errno, 0 for success, or PRINTED */
};

static const struct probe probes[] = {
    {"read-file", "PATH", 1, 1, probe_read_file},
    {"write-file", "PATH", 1, 1, probe_write_file},
    {"mkdir", "PATH", 1, 1, probe_mkdir},
    {"setuid0", "", 0, 0, probe_setuid0},
    {"setgid0", "", 0, 0, probe_setgid0},
    {"setuid", "UID", 1, 1, probe_setuid},
    {"setgid", "GID", 1, 1, probe_setgid},
    {"chown", "PATH UID GID", 3, 3, probe_chown},
    {"chmod", "PATH MODE", 2, 2, probe_chmod},
    {"cap-raise", "CAP", 1, 1, probe_cap_raise},
    {"ambient-raise", "CAP", 1, 1, probe_ambient_raise},
    {"mknod", "PATH", 1, 1, probe_mknod},
    {"sethostname", "NAME", 1, 1, probe_sethostname},
    {"exec-setuid", "PATH [ARGS...]", 1, 64, probe_exec_setuid},
    {"caps", "", 0, 0, probe_caps},
    {"mount", "", 0, 0, probe_mount},
    {"umount", "", 0, 0, probe_umount},
    {"unshare-user", "", 0, 0, probe_unshare_user},
    {"unshare-mount", "", 0, 0, probe_unshare_mount},
    {"unshare-net", "", 0, 0, probe_unshare_net},
    {"setns", "[NSFILE]", 0, 1, probe_setns},
    {"pivot-root", "", 0, 0, probe_pivot_root},
    {"chroot", "", 0, 0, probe_chroot},
    {"clone-newns", "", 0, 0, probe_clone_newns},
    {"clone3", "", 0, 0, probe_clone3},
    {"ptrace-pid1", "", 0, 0, probe_ptrace_pid1},
    {"ptrace-child", "", 0, 0, probe_ptrace_child},
    {"ptrace-traceme", "", 0, 0, probe_ptrace_traceme},
    {"find-string-in-proc", "STRING|hex:HEX", 1, 1, probe_find_string_in_proc},
    {"keyctl", "", 0, 0, probe_keyctl},
    {"add-key", "", 0, 0, probe_add_key},
    {"bpf", "", 0, 0, probe_bpf},
    {"perf-event-open", "", 0, 0, probe_perf_event_open},
    {"userfaultfd", "", 0, 0, probe_userfaultfd},
    {"io-uring-setup", "", 0, 0, probe_io_uring_setup},
    {"open-by-handle-at", "", 0, 0, probe_open_by_handle_at},
    {"name-to-handle-at", "", 0, 0, probe_name_to_handle_at},
    {"kexec-load", "", 0, 0, probe_kexec_load},
    {"init-module", "", 0, 0, probe_init_module},
    {"finit-module", "", 0, 0, probe_finit_module},
    {"reboot", "", 0, 0, probe_reboot},
    {"swapon", "", 0, 0, probe_swapon},
    {"x32", "", 0, 0, probe_x32},
    {"int80", "", 0, 0, probe_int80},
    {"tiocsti", "FD", 1, 1, probe_tiocsti},
    {"tioclinux", "FD", 1, 1, probe_tioclinux},
    {"socket-raw", "", 0, 0, probe_socket_raw},
    {"socket-packet", "", 0, 0, probe_socket_packet},
    {"socket-netlink", "", 0, 0, probe_socket_netlink},
    {"connect-tcp", "HOST PORT", 2, 2, probe_connect_tcp},
    {"connect-unix", "PATH|@ABSTRACT", 1, 1, probe_connect_unix},
    {"personality", "VALUE", 1, 1, probe_personality},
    {"list-fds", "", 0, 0, probe_list_fds},
    {"sysrq", "", 0, 0, probe_sysrq},
    {"write-proc-sys", "[PATH]", 0, 1, probe_write_proc_sys},
    {"rewrite-pid1-memory", "FROM TO (text or hex:HEX)", 2, 2, probe_rewrite_pid1_memory},
    {"fork-bomb", "[MAX]", 0, 1, probe_fork_bomb},
    {"memory-bomb", "MB", 1, 1, probe_memory_bomb},
    {"daemonize", "PIDFILE", 1, 1, probe_daemonize},
};

static void usage(void) {
  fprintf(stderr, "usage: gatehouse-probe NAME [ARGS]\nprobes:\n");
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; ++i)
    fprintf(stderr, "  %s %s\n", probes[i].name, probes[i].args);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; ++i) {
    const struct probe *p = &probes[i];
    if (strcmp(argv[1], p->name) != 0) continue;
    int nargs = argc - 2;
    if (nargs < p->min_args || nargs > p->max_args) {
      fprintf(stderr, "usage: gatehouse-probe %s %s\n", p->name, p->args);
      return 2;
    }
    current_probe = p->name;
    say("attempting");
    int r = p->fn(argv + 2);
    if (r != PRINTED) result(r);
    return 0;
  }
  fprintf(stderr, "gatehouse-probe: unknown probe \"%s\"\n", argv[1]);
  usage();
  return 2;
}
