/* gatehouse-probe, second half: see probe.c for what a probe prints. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
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
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

/* ---- kernel attack surface refused by seccomp ---- */

/* Kernel keyrings are not namespaced: keys would be shared with the host. */
int probe_keyctl(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1));
}

int probe_add_key(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_add_key, "user", "gatehouse-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
}

/* eBPF: a large, frequently exploited kernel surface. */
int probe_bpf(char **argv) {
  (void)argv;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
  if (fd < 0) return errno;
  close((int)fd);
  return 0;
}

/* perf events: kernel attack surface and a side channel. */
int probe_perf_event_open(char **argv) {
  (void)argv;
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  if (fd < 0) return errno;
  close((int)fd);
  return 0;
}

/* userfaultfd makes kernel races easy to win. Asks for the least privilege
 * (user-mode faults only), which the kernel would otherwise allow. */
int probe_userfaultfd(char **argv) {
  (void)argv;
  long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (fd < 0) return errno;
  close((int)fd);
  return 0;
}

/* io_uring: runs syscalls from kernel threads, past seccomp's view. */
int probe_io_uring_setup(char **argv) {
  (void)argv;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  long fd = syscall(SYS_io_uring_setup, 4, &p);
  if (fd < 0) return errno;
  close((int)fd);
  return 0;
}

/* The "shocker" escape: open a file by handle, bypassing the mount view.
 * Handle type 1 (FILEID_INO32_GEN) for inode 2, the root of most file
 * systems. */
int probe_open_by_handle_at(char **argv) {
  (void)argv;
  struct file_handle *h = malloc(sizeof *h + 8);
  if (h == NULL) return ENOMEM;
  h->handle_bytes = 8;
  h->handle_type = 1;
  memset(h->f_handle, 0, 8);
  h->f_handle[0] = 2;
  int mfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long fd = syscall(SYS_open_by_handle_at, mfd, h, O_RDONLY);
  int e = rc_errno(fd);
  if (fd >= 0) close((int)fd);
  if (mfd >= 0) close(mfd);
  free(h);
  return e;
}

int probe_name_to_handle_at(char **argv) {
  (void)argv;
  struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
  if (h == NULL) return ENOMEM;
  h->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  int e = rc_errno(syscall(SYS_name_to_handle_at, AT_FDCWD, "/", h, &mount_id, 0));
  free(h);
  return e;
}

/* kexec with no segments: unloads a loaded kexec image at most. */
int probe_kexec_load(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL));
}

int probe_init_module(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_init_module, NULL, 0UL, ""));
}

int probe_finit_module(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_finit_module, -1, "", 0));
}

/* Bad magic numbers: the kernel checks CAP_SYS_BOOT first (EPERM), then
 * the magic (EINVAL), so this can never reboot anything. EINVAL here means
 * the job had CAP_SYS_BOOT. */
int probe_reboot(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_reboot, 0, 0, 0, NULL));
}

/* A device node (/dev/null's 1:3) would reach a driver: CAP_MKNOD is never
 * granted, and a user namespace cannot create devices anyway. */
int probe_mknod(char **argv) {
  return rc_errno(mknod(argv[0], S_IFCHR | 0666, makedev(1, 3)));
}

/* The job's UTS namespace is its own, but changing it is refused. */
int probe_sethostname(char **argv) {
  return rc_errno(sethostname(argv[0], strlen(argv[0])));
}

int probe_swapon(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_swapon, "/nonexistent-gatehouse-swap", 0));
}

/* ---- foreign ABIs: the filter must kill the process ---- */

/* x32 numbers bypass an x86_64-only filter unless it checks the bit. */
int probe_x32(char **argv) {
  (void)argv;
  return rc_errno(syscall(SYS_getpid | X32_SYSCALL_BIT));
}

/* i386 syscalls via int 0x80 have different numbers (and a different audit
 * arch): an x86_64 allowlist means nothing for them. */
int probe_int80(char **argv) {
  (void)argv;
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) /* i386 getpid */
                   : "memory", "cc", "r8", "r9", "r10", "r11");
  return ret < 0 ? (int)-ret : 0;
}

/* ---- ioctls on terminals ---- */

/* TIOCSTI pushes input into a terminal: commands typed into the shell that
 * started the job. Also with high bits set in the request, which the
 * kernel drops but a careless filter compares. */
int probe_tiocsti(char **argv) {
  int fd = parse_fd(argv[0]);
  if (fd < 0) return EBADF;
  char c = ' ';
  result(rc_errno(syscall(SYS_ioctl, fd, (unsigned long)TIOCSTI, &c)));
  current_probe = "tiocsti-high";
  say("attempting");
  result(rc_errno(syscall(SYS_ioctl, fd, (unsigned long)TIOCSTI | (1UL << 32), &c)));
  return PRINTED;
}

/* TIOCLINUX: console selection/paste. Asks only for the foreground VT. */
int probe_tioclinux(char **argv) {
  int fd = parse_fd(argv[0]);
  if (fd < 0) return EBADF;
  char sub = TIOCL_GETFGCONSOLE;
  return rc_errno(syscall(SYS_ioctl, fd, (unsigned long)TIOCLINUX, &sub));
}

/* ---- network ---- */

static int open_close_socket(int family, int type, int protocol) {
  int fd = socket(family, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

/* Raw sockets can forge packets and sniff. */
int probe_socket_raw(char **argv) {
  (void)argv;
  return open_close_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
}

int probe_socket_packet(char **argv) {
  (void)argv;
  return open_close_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
}

/* Netlink reaches routing, firewall and many kernel subsystems. */
int probe_socket_netlink(char **argv) {
  (void)argv;
  return open_close_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
}

/* Network policy: connect to a numeric address, 5 s timeout. */
int probe_connect_tcp(char **argv) {
  struct sockaddr_storage ss;
  socklen_t len;
  long port;
  memset(&ss, 0, sizeof ss);
  if (parse_long(argv[1], &port) != 0 || port < 0 || port > 65535) return EINVAL;
  struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
  if (inet_pton(AF_INET, argv[0], &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, argv[0], &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    len = sizeof *in6;
  } else {
    say("note=HOST must be a numeric IPv4 or IPv6 address (static binary: no DNS)");
    return EINVAL;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int e = 0;
  if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
    e = errno;
    if (e == EINPROGRESS) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
      int n = poll(&pfd, 1, 5000);
      if (n == 0) {
        e = ETIMEDOUT;
      } else if (n < 0) {
        e = errno;
      } else {
        socklen_t el = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0) e = errno;
      }
    }
  }
  close(fd);
  return e;
}

/* Host daemons listening on unix sockets (docker.sock, dbus, the broker).
 * A leading '@' means the abstract namespace. */
int probe_connect_unix(char **argv) {
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  size_t plen = strlen(argv[0]);
  if (plen == 0 || plen >= sizeof sun.sun_path) return ENAMETOOLONG;
  memcpy(sun.sun_path, argv[0], plen);
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  if (argv[0][0] == '@') {
    sun.sun_path[0] = '\0';
  } else {
    len += 1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int e = rc_errno(connect(fd, (struct sockaddr *)&sun, len));
  close(fd);
  return e;
}

/* ---- process state ---- */

/* ADDR_NO_RANDOMIZE and friends weaken the job's own exploit mitigations;
 * odd execution domains reach rarely used kernel code. */
int probe_personality(char **argv) {
  long v;
  if (parse_long(argv[0], &v) != 0) return EINVAL;
  return rc_errno(syscall(SYS_personality, (unsigned long)v));
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Descriptors leaked into the job (the broker's sockets, host files). */
int probe_list_fds(char **argv) {
  (void)argv;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return errno;
  int fds[1024];
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL && n < sizeof fds / sizeof fds[0]) {
    long fd;
    if (parse_long(de->d_name, &fd) != 0 || fd == dirfd(d)) continue;
    fds[n++] = (int)fd;
  }
  closedir(d);
  qsort(fds, n, sizeof fds[0], cmp_int);
  char line[4096];
  size_t off = 0;
  line[0] = '\0';
  for (size_t i = 0; i < n && off < sizeof line - 16; ++i)
    off += (size_t)snprintf(line + off, sizeof line - off, "%s%d", i ? "," : "", fds[i]);
  say("fds=%s", line);
  return 0;
}

/* ---- host interfaces in /proc ---- */

/* /proc/sysrq-trigger: 'h' only prints help to the kernel log. */
int probe_sysrq(char **argv) {
  (void)argv;
  int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = rc_errno(write(fd, "h", 1));
  close(fd);
  return e;
}

/* Kernel tunables. Writes back the value already there, so a success
 * changes nothing but proves /proc/sys is writable. */
int probe_write_proc_sys(char **argv) {
  const char *path = argv[0] != NULL ? argv[0] : "/proc/sys/kernel/hostname";
  char value[4096];
  ssize_t n = -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = read(fd, value, sizeof value);
    close(fd);
  }
  if (n <= 0) {
    struct utsname u;
    uname(&u);
    n = (ssize_t)strlen(u.nodename);
    memcpy(value, u.nodename, (size_t)n);
  }
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = rc_errno(write(fd, value, (size_t)n));
  close(fd);
  return e;
}

/* hex:HEX or plain text into out; its length, or -1. */
static long unhex(const char *s, char *out, size_t cap) {
  size_t n = 0;
  if (strncmp(s, "hex:", 4) != 0) {
    n = strlen(s);
    if (n > cap) return -1;
    memcpy(out, s, n);
    return (long)n;
  }
  s += 4;
  size_t hl = strlen(s);
  if (hl % 2 != 0 || hl / 2 > cap) return -1;
  for (size_t i = 0; i < hl; i += 2) {
    char byte[3] = {s[i], s[i + 1], '\0'};
    if (!isxdigit((unsigned char)byte[0]) || !isxdigit((unsigned char)byte[1])) return -1;
    out[n++] = (char)strtol(byte, NULL, 16);
  }
  return (long)n;
}

/* pid 1 is the worker: it holds the job spec, every later step's command
 * among it, and runs as the steps' uid. Opens /proc/1/mem for writing and,
 * if that works, rewrites every copy of FROM in its writable mappings into
 * TO (same length): the next step would then run the job's command, not
 * the one the broker sent. Both may be hex:..., so neither appears in this
 * step's own command line. Prints "replaced=N" before result=OK. */
int probe_rewrite_pid1_memory(char **argv) {
  char from[256], to[256];
  long fl = unhex(argv[0], from, sizeof from), tl = unhex(argv[1], to, sizeof to);
  if (fl <= 0 || tl != fl) return EINVAL;
  int mem = open("/proc/1/mem", O_RDWR | O_CLOEXEC);
  if (mem < 0) return errno;
  FILE *maps = fopen("/proc/1/maps", "re");
  if (maps == NULL) {
    int e = errno;
    close(mem);
    return e;
  }
  static char buf[(1 << 20) + 256];
  long replaced = 0;
  char line[512];
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[1] != 'w') continue;
    for (unsigned long at = lo; at < hi;) {
      size_t want = hi - at < sizeof buf ? (size_t)(hi - at) : sizeof buf;
      ssize_t n = pread(mem, buf, want, (off_t)at);
      if (n < fl) break;
      for (char *p = buf; (p = memmem(p, (size_t)(buf + n - p), from, (size_t)fl)) != NULL; p += fl)
        if (pwrite(mem, to, (size_t)tl, (off_t)(at + (unsigned long)(p - buf))) == tl) ++replaced;
      if ((size_t)n < want) break;
      at += (unsigned long)n - (unsigned long)(fl - 1); /* overlap: a match across chunks */
    }
  }
  fclose(maps);
  close(mem);
  say("replaced=%ld", replaced);
  return 0;
}

/* ---- resource limits (cgroup pids/memory) ---- */

/* Forks until the pids limit stops it (at most MAX, default 100000). */
int probe_fork_bomb(char **argv) {
  long max = 100000;
  if (argv[0] != NULL && (parse_long(argv[0], &max) != 0 || max <= 0)) return EINVAL;
  pid_t *pids = calloc((size_t)max, sizeof *pids);
  if (pids == NULL) return ENOMEM;
  long count = 0;
  int e = 0;
  while (count < max) {
    pid_t pid = fork();
    if (pid < 0) {
      e = errno;
      break;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) pause();
    }
    pids[count++] = pid;
  }
  for (long i = 0; i < count; ++i) kill(pids[i], SIGKILL);
  for (long i = 0; i < count; ++i) reap(pids[i]);
  free(pids);
  say("result=%s count=%ld", errname(e), count);
  return PRINTED;
}

/* Allocates and touches MB MiB in 16 MiB steps; the memory limit should
 * OOM-kill it before the end. */
int probe_memory_bomb(char **argv) {
  long mb;
  if (parse_long(argv[0], &mb) != 0 || mb <= 0) return EINVAL;
  const long step = 16;
  for (long done = 0; done < mb; done += step) {
    size_t bytes = (size_t)step << 20;
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return errno;
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    say("allocated=%ldMiB", done + step);
  }
  return 0;
}

/* A process that escapes the job's lifetime: double fork + setsid. The
 * grandchild writes its pid (as the job sees it) to PIDFILE, names itself
 * "gh-probe-daemon" (visible to the host in /proc/PID/comm), drops its
 * stdio (so it holds no pipe of the harness open) and sleeps forever. The
 * probe returns once the pid file is written. */
int probe_daemonize(char **argv) {
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) return errno;
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    close(sync[0]);
    setsid();
    pid_t gc = fork();
    if (gc != 0) _exit(gc < 0 ? 1 : 0);
    signal(SIGHUP, SIG_IGN);
    prctl(PR_SET_NAME, "gh-probe-daemon");
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dprintf(fd, "%d\n", (int)getpid());
      close(fd);
    }
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      if (devnull > 2) close(devnull);
    }
    if (chdir("/") != 0) {
      /* stays where it is */
    }
    close(sync[1]); /* the pid file is written */
    for (;;) pause();
  }
  close(sync[1]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  char c;
  while (read(sync[0], &c, 1) < 0 && errno == EINTR) {
  }
  close(sync[0]);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return ECHILD;
  return access(argv[0], F_OK) == 0 ? 0 : ENOENT;
}

