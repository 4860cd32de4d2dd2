// Loading secrets (broker/secrets.cpp) and the job's /run/secrets tmpfs
// (sandbox/secrets.cpp). The loader must refuse every file or directory
// that someone other than root could read or replace, say how to fix it,
// and never hang on a planted FIFO. Tests run as root (they chown).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "broker/secrets.hpp"
#include "sandbox/secrets.hpp"

using gh::broker::kMaxSecretBytes;
using gh::broker::load_secrets;
using gh::policy::SecretExposure;

namespace {

struct TempDir {
  std::string base;     // /tmp/gh-secrets-XXXXXX (0700, root's)
  std::string secrets;  // base/secrets (0700, root's)
  TempDir() {
    char tmpl[] = "/tmp/gh-secrets-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    base = tmpl;
    secrets = base + "/secrets";
    REQUIRE(mkdir(secrets.c_str(), 0700) == 0);
  }
  ~TempDir() { (void)!system(("rm -rf '" + base + "'").c_str()); }
  std::string path(const std::string& name) const { return secrets + "/" + name; }
  void write(const std::string& name, const std::string& content, mode_t mode = 0600) const {
    int fd = open(path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
    REQUIRE(chmod(path(name).c_str(), mode) == 0);
  }
};

SecretExposure env(const std::string& name) { return {name, SecretExposure::As::Env, "VAR_" + name, {}}; }
SecretExposure file(const std::string& name) { return {name, SecretExposure::As::File, name, {}}; }

std::string refused(const std::string& dir, const std::vector<SecretExposure>& wanted) {
  auto r = load_secrets(dir, wanted);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

bool has(const std::string& msg, const std::string& what) { return msg.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("tests run as root") { REQUIRE(geteuid() == 0); }

TEST_CASE("a good secret loads; one trailing newline (or CRLF) is stripped, no more") {
  TempDir t;
  t.write("npm_token", "npm_abcdefgh1234\n");
  t.write("crlf", "abcdefgh\r\n");
  t.write("two", "abcdefgh\n\n");
  t.write("none", "abcdefgh");
  t.write("binary", std::string("ab\0cdefgh", 9));
  auto r = load_secrets(t.secrets, {env("npm_token"), env("crlf"), file("two"), env("none"), file("binary")});
  INFO((r.ok() ? "" : r.error().message));
  REQUIRE(r.ok());
  REQUIRE(r->size() == 5);
  CHECK((*r)[0].name == "npm_token");
  CHECK((*r)[0].value == "npm_abcdefgh1234");
  CHECK((*r)[1].value == "abcdefgh");
  CHECK((*r)[2].value == "abcdefgh\n");
  CHECK((*r)[3].value == "abcdefgh");
  CHECK((*r)[4].value == std::string("ab\0cdefgh", 9));  // NUL is fine in a file
  // Trailing slash on the directory is harmless.
  CHECK(load_secrets(t.secrets + "/", {env("none")}).ok());
}

TEST_CASE("group- or other-readable secret files are refused with the chmod that fixes them") {
  TempDir t;
  for (mode_t m : {0640, 0604, 0660, 0602, 0610, 0601}) {
    CAPTURE(m);
    t.write("tok", "abcdefgh1234", m);
    auto msg = refused(t.secrets, {env("tok")});
    CHECK(has(msg, "chmod 600 " + t.path("tok")));
  }
  t.write("tok", "abcdefgh1234", 0400);
  CHECK(load_secrets(t.secrets, {env("tok")}).ok());
}

TEST_CASE("a secret file not owned by root is refused with the chown that fixes it") {
  TempDir t;
  t.write("tok", "abcdefgh1234");
  REQUIRE(chown(t.path("tok").c_str(), 1, 1) == 0);
  auto msg = refused(t.secrets, {env("tok")});
  CHECK(has(msg, "owned by uid 1"));
  CHECK(has(msg, "chown root:root " + t.path("tok")));
  // Root's uid with another group is fine: group bits are zero anyway.
  REQUIRE(chown(t.path("tok").c_str(), 0, 1) == 0);
  CHECK(load_secrets(t.secrets, {env("tok")}).ok());
}

TEST_CASE("symlinks and FIFOs are refused, and a FIFO does not block") {
  TempDir t;
  t.write("real", "abcdefgh1234");
  REQUIRE(symlink(t.path("real").c_str(), t.path("link").c_str()) == 0);
  CHECK(has(refused(t.secrets, {env("link")}), "symbolic link"));
  REQUIRE(mkfifo(t.path("fifo").c_str(), 0600) == 0);
  alarm(10);  // a blocking open would kill the test here instead of hanging it
  auto msg = refused(t.secrets, {env("fifo")});
  alarm(0);
  CHECK(has(msg, t.path("fifo") + " is a FIFO"));
  REQUIRE(mkdir(t.path("dir").c_str(), 0700) == 0);
  CHECK(has(refused(t.secrets, {env("dir")}), "is a directory"));
}

TEST_CASE("too short, too big, missing; exact limits accepted") {
  TempDir t;
  t.write("short", "abcdefg\n");  // 7 bytes after the newline
  CHECK(has(refused(t.secrets, {env("short")}), "shorter than 8 bytes; short secrets cannot be masked reliably"));
  t.write("eight", "abcdefgh\n");
  CHECK(load_secrets(t.secrets, {env("eight")}).ok());
  t.write("big", std::string(kMaxSecretBytes + 1, 'x'));
  CHECK(has(refused(t.secrets, {env("big")}), "at most 65536 bytes"));
  t.write("max", std::string(kMaxSecretBytes, 'x'));
  auto r = load_secrets(t.secrets, {file("max")});
  REQUIRE(r.ok());
  CHECK((*r)[0].value.size() == kMaxSecretBytes);
  auto msg = refused(t.secrets, {env("missing")});
  CHECK(has(msg, t.path("missing") + " does not exist"));
}

TEST_CASE("secrets too large to mask are refused as a whole") {
  TempDir t;
  std::vector<SecretExposure> wanted;
  uint32_t x = 12345;
  for (int i = 0; i < 4; ++i) {
    std::string v(kMaxSecretBytes, '\0');
    for (auto& c : v) c = static_cast<char>((x = x * 1103515245 + 12345) >> 16);
    t.write("blob" + std::to_string(i), v);
    wanted.push_back(file("blob" + std::to_string(i)));
  }
  CHECK(load_secrets(t.secrets, {wanted[0], wanted[1]}).ok());  // about 5 MB of forms
  CHECK(has(refused(t.secrets, wanted), "too large to mask"));
}

TEST_CASE("a NUL byte is refused for an environment variable, allowed in a file") {
  TempDir t;
  t.write("nul", std::string("abcd\0efgh", 9));
  CHECK(has(refused(t.secrets, {env("nul")}), "NUL"));
  CHECK(load_secrets(t.secrets, {file("nul")}).ok());
}

TEST_CASE("an unsafe directory or parent is refused") {
  TempDir t;
  t.write("tok", "abcdefgh1234");
  REQUIRE(chmod(t.secrets.c_str(), 0777) == 0);
  CHECK(has(refused(t.secrets, {env("tok")}), "chmod go-w " + t.secrets));
  REQUIRE(chmod(t.secrets.c_str(), 0720) == 0);  // group-writable is as bad
  CHECK(has(refused(t.secrets, {env("tok")}), "writable by group or others"));
  // Sticky does not excuse the secrets directory itself: anyone could add files.
  REQUIRE(chmod(t.secrets.c_str(), 01777) == 0);
  CHECK(has(refused(t.secrets, {env("tok")}), "chmod go-w " + t.secrets));
  REQUIRE(chmod(t.secrets.c_str(), 0700) == 0);
  REQUIRE(chown(t.secrets.c_str(), 1, 0) == 0);
  CHECK(has(refused(t.secrets, {env("tok")}), "chown root:root " + t.secrets));
  REQUIRE(chown(t.secrets.c_str(), 0, 0) == 0);
  // A parent writable by others lets anyone rename the secrets directory away.
  REQUIRE(chmod(t.base.c_str(), 0777) == 0);
  CHECK(has(refused(t.secrets, {env("tok")}), "its parent " + t.base));
  REQUIRE(chmod(t.base.c_str(), 0700) == 0);
  REQUIRE(chown(t.base.c_str(), 1, 1) == 0);
  CHECK(has(refused(t.secrets, {env("tok")}), "its parent " + t.base + " is owned by uid 1"));
  REQUIRE(chown(t.base.c_str(), 0, 0) == 0);
  CHECK(load_secrets(t.secrets, {env("tok")}).ok());  // /tmp itself is sticky and root's: fine
  // Reached through a symlink: the real path is what is checked and read.
  const std::string link = t.base + "/via-link";
  REQUIRE(symlink(t.secrets.c_str(), link.c_str()) == 0);
  CHECK(load_secrets(link, {env("tok")}).ok());
}

TEST_CASE("relative or missing directories are refused; no secrets wanted needs no directory") {
  CHECK(has(refused("etc/gatehouse/secrets", {env("tok")}), "not an absolute path"));
  CHECK(has(refused("/nonexistent/gatehouse-secrets", {env("tok")}), "/nonexistent/gatehouse-secrets does not exist"));
  auto r = load_secrets("/nonexistent/gatehouse-secrets", {});
  REQUIRE(r.ok());
  CHECK(r->empty());
}

TEST_CASE("every problem is reported at once, one line each") {
  TempDir t;
  t.write("open", "abcdefgh1234", 0644);
  t.write("tiny", "abc");
  t.write("good", "abcdefgh1234");
  t.write("both", "abcdefgh1234", 0666);
  REQUIRE(chown(t.path("both").c_str(), 1, 1) == 0);
  auto msg = refused(t.secrets, {env("open"), env("good"), env("tiny"), env("gone"), file("both")});
  CHECK(has(msg, "secret `open`: " + t.path("open")));
  CHECK(has(msg, "secret `tiny`: " + t.path("tiny")));
  CHECK(has(msg, "secret `gone`: " + t.path("gone")));
  CHECK(has(msg, "chmod 600 " + t.path("both")));
  CHECK(has(msg, "chown root:root " + t.path("both")));
  CHECK_FALSE(has(msg, "`good`"));
  CHECK(std::count(msg.begin(), msg.end(), '\n') == 4);  // five lines
}

TEST_CASE("names that are not plain file names are refused before any open") {
  TempDir t;
  t.write("tok", "abcdefgh1234");
  CHECK(has(refused(t.secrets, {env("../secrets/tok")}), "not a plain file name"));
  CHECK(has(refused(t.secrets, {env("..")}), "not a plain file name"));
}

// ---- /run/secrets (sandbox/secrets.cpp) -----------------------------------

namespace {

constexpr uint32_t kJobUid = 3434, kJobGid = 3435;

// Runs `body` in a child with its own mount namespace, as the sandbox child
// would be when it calls mount_secrets: the job's ids, capabilities kept.
// The child writes "" for success or what went wrong.
std::string in_mount_namespace(const std::string& root, std::string (*body)(const std::string& root)) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    std::string why;
    if (unshare(CLONE_NEWNS) != 0) why = std::string("unshare: ") + strerror(errno);
    else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) why = "private";
    else if (mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) why = "root tmpfs";
    else if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) != 0) why = "securebits";
    else if (setresgid(kJobGid, kJobGid, kJobGid) != 0 || setresuid(kJobUid, kJobUid, kJobUid) != 0) why = "ids";
    else why = body(root);
    (void)!write(p[1], why.data(), why.size());
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child died: status " + std::to_string(status);
  return out;
}

gh::sandbox::SandboxPlan plan_for(const std::string& root) {
  gh::sandbox::SandboxPlan plan;
  plan.root_dir = root;
  plan.job_uid = kJobUid;
  plan.job_gid = kJobGid;
  plan.secret_files = {{"npm_token", "npm_abcdefgh1234"}, {"key.pem", std::string(5000, 'k')}};
  return plan;
}

std::string mounts_and_checks(const std::string& root) {
  auto plan = plan_for(root);
  if (int e = gh::sandbox::mount_secrets(plan); e) return std::string("mount_secrets: ") + strerror(e);
  const std::string dir = root + "/run/secrets";
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return "no dir";
  if ((st.st_mode & 07777) != 0500 || st.st_uid != kJobUid) return "dir mode/owner";
  for (const auto& f : plan.secret_files) {
    const std::string p = dir + "/" + f.name;
    if (stat(p.c_str(), &st) != 0) return "missing " + p;
    if ((st.st_mode & 07777) != 0400 || st.st_uid != kJobUid || st.st_gid != kJobGid) return "file mode/owner " + p;
    int fd = open(p.c_str(), O_RDONLY);
    std::string got(f.content.size() + 10, '\0');
    ssize_t n = read(fd, got.data(), got.size());
    close(fd);
    if (n != static_cast<ssize_t>(f.content.size()) || got.substr(0, f.content.size()) != f.content) return "content " + p;
    // Read-only even for a process holding capabilities in the namespace.
    if (open(p.c_str(), O_WRONLY) >= 0 || errno != EROFS) return "writable " + p;
  }
  if (open((dir + "/new").c_str(), O_WRONLY | O_CREAT, 0600) >= 0 || errno != EROFS) return "can create files";
  struct statvfs sv {};
  if (statvfs(dir.c_str(), &sv) != 0) return "statvfs";
  for (auto [flag, what] : {std::pair{ST_RDONLY, "ro"}, {ST_NOSUID, "nosuid"}, {ST_NODEV, "nodev"}, {ST_NOEXEC, "noexec"}})
    if (!(sv.f_flag & flag)) return std::string("mount lacks ") + what;
  if (sv.f_blocks * sv.f_frsize > (64u << 10)) return "tmpfs larger than needed";
  return "";
}

std::string refuses_bad_plans(const std::string& root) {
  auto plan = plan_for(root);
  plan.secret_files.clear();
  if (gh::sandbox::mount_secrets(plan) != 0) return "empty plan failed";
  struct stat st {};
  if (stat((root + "/run").c_str(), &st) == 0) return "empty plan created /run";
  plan = plan_for(root);
  plan.secret_files = {{"../escape", "abcdefgh1234"}};
  if (gh::sandbox::mount_secrets(plan) != EINVAL) return "a path name was accepted";
  plan = plan_for(root + "/b");
  plan.secret_files.push_back(plan.secret_files[0]);
  if (mkdir((root + "/b").c_str(), 0755) != 0) return "mkdir";
  if (gh::sandbox::mount_secrets(plan) != EEXIST) return "a duplicate name was accepted";
  plan = plan_for(root + "/c");
  plan.job_uid = kJobUid + 1;  // the caller is not the job
  if (gh::sandbox::mount_secrets(plan) != EPERM) return "wrong ids accepted";
  return "";
}

}  // namespace

TEST_CASE("mount_secrets: 0400 files owned by the job, 0500 dir, read-only small tmpfs") {
  TempDir t;
  const std::string root = t.base + "/root";
  REQUIRE(mkdir(root.c_str(), 0755) == 0);
  CHECK(in_mount_namespace(root, mounts_and_checks) == "");
  // Nothing leaked into the host's view.
  struct stat st {};
  CHECK(stat((root + "/run").c_str(), &st) != 0);
}

TEST_CASE("mount_secrets refuses path names, duplicates and a caller that is not the job; empty is a no-op") {
  TempDir t;
  const std::string root = t.base + "/root";
  REQUIRE(mkdir(root.c_str(), 0755) == 0);
  CHECK(in_mount_namespace(root, refuses_bad_plans) == "");
}
