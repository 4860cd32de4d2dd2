// Checkout staging. The `checkout` step of a job run here copies the git
// work tree that holds the job file (tracked files and untracked files git
// does not ignore, never .git itself, which may hold credentials in remote
// URLs), or the file's folder when it is in no work tree. The broker stages
// that copy before the sandbox exists; the step itself then copies it from
// a read-only bind into the working directory, as the job's user.
//
// git runs as the owner of the work tree, never as root: a repository's
// config (core.fsmonitor and friends) can name programs to run.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "broker/broker.hpp"

namespace gh::broker {

namespace {

constexpr size_t kMaxCheckoutFiles = 200000;
constexpr uint64_t kMaxCheckoutBytes = 4ull << 30;

// Runs git as `owner` in `dir`, capturing stdout (bounded). Returns nullopt
// when git fails or is missing.
std::optional<std::string> git_as(uid_t owner, gid_t group, const std::string& dir, std::vector<std::string> args) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return std::nullopt;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 2);
    if (setgroups(0, nullptr) != 0 || setresgid(group, group, group) != 0 || setresuid(owner, owner, owner) != 0) _exit(126);
    std::vector<std::string> full = {"git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-C", dir};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    char env_home[] = "HOME=/nonexistent";
    char env_path[] = "PATH=/usr/bin:/bin";
    char env_nosys[] = "GIT_CONFIG_NOSYSTEM=1";
    char* envp[] = {env_home, env_path, env_nosys, nullptr};
    execve("/usr/bin/git", argv.data(), envp);
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return std::nullopt;
  }
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0 && out.size() < (64u << 20)) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

// git never lists such paths, but the listing is parsed text: a ".."
// component would copy from outside the tree.
bool has_dotdot_component(const std::string& rel) {
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    if (rel.compare(start, slash == std::string::npos ? std::string::npos : slash - start, "..") == 0) return true;
    if (slash == std::string::npos) return false;
    start = slash + 1;
  }
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status mkdirs_owned(const std::string& base, const std::string& rel, uid_t uid, gid_t gid) {
  std::string cur = base;
  size_t start = 0;
  while (true) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) return ok_status();
    cur = base + "/" + rel.substr(0, slash);
    if (mkdir(cur.c_str(), 0755) == 0) {
      if (lchown(cur.c_str(), uid, gid) != 0) return err("chown " + cur + ": " + strerror(errno));
    } else if (errno != EEXIST) {
      return err("mkdir " + cur + ": " + strerror(errno));
    }
    start = slash + 1;
  }
}

// Copies one entry (regular file, symlink or empty directory), never
// following links in the source.
Status copy_entry(const std::string& src, const std::string& dst, uid_t uid, gid_t gid, CheckoutInfo& info) {
  struct stat st {};
  if (lstat(src.c_str(), &st) != 0) return ok_status();  // deleted since listing
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(src.c_str(), target, sizeof target - 1);
    if (n < 0) return err("readlink " + src + ": " + strerror(errno));
    target[n] = 0;
    if (symlink(target, dst.c_str()) != 0 && errno != EEXIST) return err("symlink " + dst + ": " + strerror(errno));
    if (lchown(dst.c_str(), uid, gid) != 0) return err("chown " + dst + ": " + strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    if (mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST) return err("mkdir " + dst + ": " + strerror(errno));
    if (lchown(dst.c_str(), uid, gid) != 0) return err("chown " + dst + ": " + strerror(errno));
  } else if (S_ISREG(st.st_mode)) {
    info.bytes += static_cast<uint64_t>(st.st_size);
    if (info.bytes > kMaxCheckoutBytes) return err("the checkout is larger than 4 GiB");
    int in = open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) return err("open " + src + ": " + strerror(errno));
    int out = open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0755);
    if (out < 0) {
      close(in);
      return err("create " + dst + ": " + strerror(errno));
    }
    char buf[1 << 16];
    ssize_t n;
    Status s = ok_status();
    while ((n = read(in, buf, sizeof buf)) > 0)
      if (write(out, buf, static_cast<size_t>(n)) != n) {
        s = err("write " + dst + ": " + strerror(errno));
        break;
      }
    if (fchown(out, uid, gid) != 0) s = err("chown " + dst + ": " + strerror(errno));
    close(in);
    close(out);
    if (!s) return s;
  }
  ++info.files;
  return ok_status();
}

void list_folder(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
  DIR* d = opendir((root + (rel.empty() ? "" : "/" + rel)).c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    std::string r = rel.empty() ? e->d_name : rel + "/" + e->d_name;
    out.push_back(r);
    if (out.size() > kMaxCheckoutFiles) break;
    if (e->d_type == DT_DIR) list_folder(root, r, out);
  }
  closedir(d);
}

}  // namespace

Result<std::string> read_file_as_owner(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return err("cannot open the job file " + path + ": " + strerror(errno));
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() <= max_bytes) text.append(buf, static_cast<size_t>(n));
  close(fd);
  return text;
}

Result<CheckoutInfo> stage_checkout(const CheckoutSource& src, const std::string& staging, uid_t uid, gid_t gid) {
  if (src.job_file.empty()) {
    CheckoutInfo info;
    info.description = "the task's job file";
    int out = open((staging + "/config.yml").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) return err("create config.yml: " + std::string(strerror(errno)));
    (void)!write(out, src.config_bytes.data(), src.config_bytes.size());
    (void)!fchown(out, uid, gid);
    close(out);
    info.files = 1;
    info.bytes = src.config_bytes.size();
    if (chown(staging.c_str(), uid, gid) != 0) return err("chown " + staging + ": " + strerror(errno));
    return info;
  }
  const std::string& job_file = src.job_file;
  char real[PATH_MAX];
  if (!realpath(job_file.c_str(), real)) return err("cannot resolve " + job_file + ": " + strerror(errno));
  std::string folder(real);
  folder = folder.substr(0, folder.rfind('/'));
  if (folder.empty()) folder = "/";
  struct stat fst {};
  if (stat(folder.c_str(), &fst) != 0) return err("stat " + folder + ": " + strerror(errno));

  CheckoutInfo info;
  std::vector<std::string> files;
  auto top = git_as(fst.st_uid, fst.st_gid, folder, {"rev-parse", "--show-toplevel"});
  if (top) {
    info.git = true;
    info.source = trim(*top);
    auto listing = git_as(fst.st_uid, fst.st_gid, info.source, {"ls-files", "-z", "--cached", "--others", "--exclude-standard"});
    if (!listing) return err("git ls-files failed in " + info.source);
    size_t start = 0;
    while (start < listing->size()) {
      size_t end = listing->find('\0', start);
      if (end == std::string::npos) end = listing->size();
      files.push_back(listing->substr(start, end - start));
      start = end + 1;
      if (files.size() > kMaxCheckoutFiles) return err("the work tree has more than 200000 files");
    }
    if (auto b = git_as(fst.st_uid, fst.st_gid, info.source, {"rev-parse", "--abbrev-ref", "HEAD"})) info.branch = trim(*b);
    if (auto s = git_as(fst.st_uid, fst.st_gid, info.source, {"rev-parse", "HEAD"})) info.sha1 = trim(*s);
    info.reponame = info.source.substr(info.source.rfind('/') + 1);
  } else {
    info.source = folder;
    list_folder(folder, "", files);
    if (files.size() > kMaxCheckoutFiles) return err("the folder has more than 200000 files");
  }
  for (const auto& rel : files) {
    if (rel.empty() || rel[0] == '/' || has_dotdot_component(rel)) continue;
    if (rel == ".git" || rel.rfind(".git/", 0) == 0) continue;
    if (auto s = mkdirs_owned(staging, rel, uid, gid); !s) return s.error();
    if (auto s = copy_entry(info.source + "/" + rel, staging + "/" + rel, uid, gid, info); !s) return s.error();
  }
  if (chown(staging.c_str(), uid, gid) != 0) return err("chown " + staging + ": " + strerror(errno));
  info.description = (info.git ? "the git work tree " : "the folder ") + info.source;
  return info;
}

}  // namespace gh::broker
