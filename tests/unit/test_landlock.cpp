// Landlock, tested in a forked child restricted to a plan over temp dirs:
// asserts the exact errno of forbidden reads, writes and execs, and that
// what the plan grants still works.
#include <doctest/doctest.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "sandbox/landlock.hpp"

using gh::sandbox::apply_landlock;
using gh::sandbox::landlock_abi_version;
using gh::sandbox::LandlockPlan;

namespace fs = std::filesystem;

namespace {

bool kernel_has_landlock() {
  if (landlock_abi_version() > 0) return true;
  std::printf("SKIP: kernel has no Landlock\n");
  std::fflush(stdout);
  WARN_MESSAGE(false, "SKIP: kernel has no Landlock; Landlock tests did not run");
  return false;
}

struct TempTree {
  fs::path base;
  TempTree() {
    char tmpl[] = "/tmp/gh-landlock-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    base = tmpl;
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
};

void write_file(const fs::path& p, const char* text, mode_t mode = 0644) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text, strlen(text)) == static_cast<ssize_t>(strlen(text)));
  close(fd);
}

// Runs fn(report_fd) in a child after no_new_privs and apply_landlock(plan).
// Returns the child's report; an empty report means every check held.
template <typename Fn>
std::string run_restricted(const LandlockPlan& plan, Fn fn) {
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(100);
    if (int e = apply_landlock(plan); e != 0) {
      dprintf(p[1], "apply_landlock: %s\n", strerror(e));
      _exit(101);
    }
    fn(p[1]);
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out += "child failed, status " + std::to_string(st) + "\n";
  return out;
}

// Reports to fd unless `rc` (a syscall return) matches `want_errno` (0 = success).
void expect(int fd, const char* what, long rc, int want_errno) {
  const int got = rc < 0 ? errno : 0;
  if (got != want_errno)
    dprintf(fd, "%s: got %s, want %s\n", what, got ? strerror(got) : "success",
            want_errno ? strerror(want_errno) : "success");
}

int open_close(const fs::path& p, int flags) {
  int fd = open(p.c_str(), flags | O_CLOEXEC, 0644);
  if (fd >= 0) close(fd);
  return fd < 0 ? -1 : 0;
}

int exec_status(const fs::path& p) {
  pid_t pid = fork();
  if (pid == 0) {
    execl(p.c_str(), p.c_str(), static_cast<char*>(nullptr));
    _exit(errno == EACCES ? 126 : 127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  errno = WIFEXITED(st) && WEXITSTATUS(st) == 126 ? EACCES : EIO;
  return -1;
}

}  // namespace

TEST_CASE("landlock ABI version") {
  if (!kernel_has_landlock()) {
    CHECK(apply_landlock(LandlockPlan{}) == EOPNOTSUPP);
    return;
  }
  MESSAGE("kernel Landlock ABI " << landlock_abi_version());
  CHECK(landlock_abi_version() >= 1);
}

TEST_CASE("landlock: read-only dir, writable dir, nothing else") {
  if (!kernel_has_landlock()) return;
  TempTree t;
  const fs::path ro = t.base / "ro", rw = t.base / "rw", out = t.base / "outside";
  for (const auto& d : {ro, rw, out}) REQUIRE(mkdir(d.c_str(), 0755) == 0);
  write_file(ro / "file", "ro");
  write_file(rw / "file", "rw");
  write_file(out / "file", "secret");
  write_file(out / "granted", "granted");
  // An executable in each place (a shell script needs /bin/sh: use true(1)).
  REQUIRE(fs::copy_file("/usr/bin/true", ro / "true"));
  REQUIRE(fs::copy_file("/usr/bin/true", rw / "true"));

  LandlockPlan plan;
  plan.rules.push_back({"/usr", false, true});  // the dynamic loader and libc
  plan.rules.push_back({ro.string(), false, false});
  plan.rules.push_back({rw.string(), true, true});
  // A rule on a single file: only file rights apply (read it, even write it).
  plan.rules.push_back({(out / "granted").string(), true, false});
  // A missing path is skipped, not an error.
  plan.rules.push_back({(t.base / "does-not-exist").string(), true, true});

  std::string report = run_restricted(plan, [&](int fd) {
    // Outside the plan: neither read nor write.
    expect(fd, "read outside", open_close(out / "file", O_RDONLY), EACCES);
    expect(fd, "write outside", open_close(out / "file", O_WRONLY), EACCES);
    expect(fd, "create outside", open_close(out / "new", O_WRONLY | O_CREAT), EACCES);
    expect(fd, "create in /tmp", open_close(t.base / "new", O_WRONLY | O_CREAT), EACCES);
    expect(fd, "mkdir outside", mkdir((out / "d").c_str(), 0755), EACCES);
    expect(fd, "unlink outside", unlink((out / "file").c_str()), EACCES);
    expect(fd, "list outside", open_close(out, O_RDONLY | O_DIRECTORY), EACCES);
    expect(fd, "read /etc/hostname", open_close("/etc/hostname", O_RDONLY), EACCES);

    // The single-file rule.
    expect(fd, "read granted file", open_close(out / "granted", O_RDONLY), 0);
    expect(fd, "write granted file", open_close(out / "granted", O_WRONLY | O_TRUNC), 0);

    // Read-only dir.
    expect(fd, "read ro", open_close(ro / "file", O_RDONLY), 0);
    expect(fd, "list ro", open_close(ro, O_RDONLY | O_DIRECTORY), 0);
    expect(fd, "write ro", open_close(ro / "file", O_WRONLY), EACCES);
    expect(fd, "create in ro", open_close(ro / "new", O_WRONLY | O_CREAT), EACCES);
    expect(fd, "truncate ro", truncate((ro / "file").c_str(), 0), EACCES);
    expect(fd, "mkdir in ro", mkdir((ro / "d").c_str(), 0755), EACCES);
    expect(fd, "unlink in ro", unlink((ro / "file").c_str()), EACCES);
    expect(fd, "exec from ro (no execute)", exec_status(ro / "true"), EACCES);

    // Writable dir.
    expect(fd, "create in rw", open_close(rw / "new", O_WRONLY | O_CREAT), 0);
    expect(fd, "write rw", open_close(rw / "file", O_WRONLY | O_APPEND), 0);
    expect(fd, "truncate rw", truncate((rw / "file").c_str(), 0), 0);
    expect(fd, "mkdir in rw", mkdir((rw / "d").c_str(), 0755), 0);
    expect(fd, "rename in rw", rename((rw / "new").c_str(), (rw / "d" / "new").c_str()), 0);
    expect(fd, "symlink in rw", symlink("file", (rw / "link").c_str()), 0);
    expect(fd, "fifo in rw", mkfifo((rw / "fifo").c_str(), 0600), 0);
    expect(fd, "unlink in rw", unlink((rw / "d" / "new").c_str()), 0);
    expect(fd, "rmdir in rw", rmdir((rw / "d").c_str()), 0);
    expect(fd, "exec from rw", exec_status(rw / "true"), 0);
    expect(fd, "char device in rw", mknod((rw / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)),
           EACCES);

    // Moving a file out of the writable dir into places the plan does not let
    // it write.
    const long mv = rename((rw / "file").c_str(), (ro / "moved").c_str());
    if (mv == 0 || (errno != EACCES && errno != EXDEV))
      dprintf(fd, "rename rw -> ro: got %s, want EACCES or EXDEV\n", mv == 0 ? "success" : strerror(errno));
  });
  CHECK_MESSAGE(report.empty(), report);

  // The parent is not restricted.
  CHECK(access((out / "file").c_str(), R_OK | W_OK) == 0);
}

// Scoping (ABI 6): a `network: host` job shares the host's abstract unix
// socket names, so a restricted process must not reach a listener outside
// its domain, nor signal a process outside it; inside its domain both work.
TEST_CASE("landlock: scopes for abstract unix sockets and signals") {
  CHECK(gh::sandbox::landlock_scopes_for_abi(5) == 0);
  CHECK(gh::sandbox::landlock_scopes_for_abi(6) == 3);  // ABSTRACT_UNIX_SOCKET | SIGNAL
  CHECK(gh::sandbox::landlock_scopes_for_abi(7) == 3);
  if (!kernel_has_landlock()) return;
  if (landlock_abi_version() < 6) {
    MESSAGE("SKIP: Landlock ABI " << landlock_abi_version() << " has no scoping (needs 6)");
    return;
  }
  auto abstract_addr = [](const std::string& name, sockaddr_un& a) {
    a = {};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), name.size());  // sun_path[0] = '\0': abstract
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  };
  const std::string outside_name = "gh-landlock-test-" + std::to_string(getpid());
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_un a{};
  socklen_t len = abstract_addr(outside_name, a);
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&a), len) == 0);
  REQUIRE(listen(listener, 4) == 0);
  const pid_t outside_pid = getpid();

  std::string report = run_restricted(LandlockPlan{}, [&](int fd) {
    sockaddr_un ca{};
    socklen_t clen = abstract_addr(outside_name, ca);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    expect(fd, "connect to an abstract socket outside the domain", connect(c, reinterpret_cast<sockaddr*>(&ca), clen),
           EPERM);
    close(c);
    expect(fd, "signal 0 to a process outside the domain", kill(outside_pid, 0), EPERM);

    // Inside the domain: its own abstract socket and its own child.
    const std::string inside_name = outside_name + "-inside";
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un la{};
    socklen_t llen = abstract_addr(inside_name, la);
    expect(fd, "bind own abstract socket", bind(l, reinterpret_cast<sockaddr*>(&la), llen), 0);
    expect(fd, "listen", listen(l, 1), 0);
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    expect(fd, "connect to own abstract socket", connect(c2, reinterpret_cast<sockaddr*>(&la), llen), 0);
    pid_t kid = fork();
    if (kid == 0) {
      pause();
      _exit(0);
    }
    expect(fd, "signal own child", kill(kid, SIGKILL), 0);
    waitpid(kid, nullptr, 0);
  });
  close(listener);
  CHECK_MESSAGE(report.empty(), report);
}
