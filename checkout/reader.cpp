// The checkout reader: runs as the owner of the work tree (never as a uid
// that could read more than the tree's owner, see broker/checkout.cpp),
// lists the tree with git, then streams it entry by entry.
//
// Every entry is opened beneath ONE descriptor of the tree's root, with
// RESOLVE_NO_SYMLINKS (beneath.hpp): a listed path is never resolved as a
// string, so a folder replaced by a symbolic link (before the copy or
// during it) is refused, not followed. A link that is itself listed is
// copied as a link (readlinkat on its parent), never followed.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_set>

#include "checkout/beneath.hpp"
#include "checkout/copier.hpp"

namespace gh::checkout {

namespace {

constexpr size_t kMaxListing = 64u << 20;  // 200000 paths of ordinary length fit many times over
constexpr size_t kMaxGitMessage = 4096;

struct GitRun {
  int status = -1;  // exit status; -1 when it did not exit normally
  std::string out, err;
};

// git runs as this process's uid with a repository's power to run programs
// taken away: no fsmonitor, no hooks, no pager, no system or global config,
// no lazy fetch, no discovery of bare repositories inside the tree. Only
// the tree's owner could have written that config, and the reader is that
// owner already; this keeps a root-owned tree's config from mattering too.
Result<GitRun> run_git(int cwd_fd, const std::vector<std::string>& args) {
  std::vector<std::string> full = {"git",
                                   "--no-pager",
                                   "-c", "core.fsmonitor=false",
                                   "-c", "core.hooksPath=/dev/null",
                                   "-c", "core.untrackedCache=false",
                                   "-c", "core.pager=cat",
                                   "-c", "safe.bareRepository=explicit",
                                   "-c", "protocol.allow=never"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  static char e_home[] = "HOME=/nonexistent", e_path[] = "PATH=/usr/bin:/bin", e_nosys[] = "GIT_CONFIG_NOSYSTEM=1",
              e_global[] = "GIT_CONFIG_GLOBAL=/dev/null", e_prompt[] = "GIT_TERMINAL_PROMPT=0",
              e_locks[] = "GIT_OPTIONAL_LOCKS=0", e_replace[] = "GIT_NO_REPLACE_OBJECTS=1",
              e_lazy[] = "GIT_NO_LAZY_FETCH=1", e_lang[] = "LC_ALL=C", e_pager[] = "GIT_PAGER=cat";
  char* envp[] = {e_home, e_path, e_nosys, e_global, e_prompt, e_locks, e_replace, e_lazy, e_lang, e_pager, nullptr};

  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  // stderr goes to a memfd, not a second pipe: nothing to interleave.
  int errfd = memfd_create("git-stderr", MFD_CLOEXEC);
  if (errfd < 0) {
    close(p[0]);
    close(p[1]);
    return err(std::string("memfd_create: ") + strerror(errno));
  }
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(errfd, 2) < 0 || fchdir(cwd_fd) != 0) _exit(126);
    signal(SIGPIPE, SIG_DFL);
    execve("/usr/bin/git", argv.data(), envp);
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    close(errfd);
    return err(std::string("fork: ") + strerror(errno));
  }
  GitRun run;
  bool too_big = false;
  char buf[65536];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (run.out.size() + static_cast<size_t>(n) > kMaxListing) {
      too_big = true;
      kill(pid, SIGKILL);
      break;
    }
    run.out.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (too_big) {
    close(errfd);
    return err("git's listing is larger than " + std::to_string(kMaxListing >> 20) + " MiB; the tree is too large to copy");
  }
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  char ebuf[kMaxGitMessage];
  ssize_t en = pread(errfd, ebuf, sizeof ebuf, 0);
  close(errfd);
  if (en > 0) run.err.assign(ebuf, static_cast<size_t>(en));
  return run;
}

// One line for a message: control characters shown as `?`.
std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

// The broker chose this uid because it owns the job file's folder; the
// folder is opened again here, by this uid, and must still be its own (a
// folder swapped for a link to someone else's tree fails here, before
// anything is read). The work tree around it must be the same owner's.
Result<UniqueFd> open_folder(const std::string& path, bool work_tree) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return err("cannot open " + path + " as uid " + std::to_string(geteuid()) + ": " + strerror(errno));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return err("cannot stat " + path + ": " + strerror(errno));
  if (st.st_uid == geteuid()) return fd;
  if (work_tree)
    return err("the work tree " + path + " belongs to uid " + std::to_string(st.st_uid) + ", but the job file's folder in it to uid " +
               std::to_string(geteuid()) + ", which reads the tree; give the whole tree to one owner (chown -R)");
  return err(path + " belongs to uid " + std::to_string(st.st_uid) + ", not to uid " + std::to_string(geteuid()) +
             " that reads it: it changed after the broker looked. Run again when the tree is not being moved");
}

// The folder outside any work tree, depth first; folders are opened from
// the root descriptor one at a time (a deep tree must not hold a
// descriptor per level), never through a link.
Status walk(int root_fd, std::vector<Listed>& out) {
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string rel = std::move(pending.back());
    pending.pop_back();
    int fd = open_beneath(root_fd, rel.empty() ? "." : rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;  // gone since it was listed
      if (errno == ELOOP) return err("`" + rel + "` became a symbolic link while the folder was listed; refusing to follow it");
      return err("cannot open `" + rel + "`: " + strerror(errno));
    }
    DIR* d = fdopendir(fd);
    if (!d) {
      close(fd);
      return err("cannot list `" + rel + "`: " + strerror(errno));
    }
    std::vector<std::pair<std::string, bool>> names;
    while (dirent* e = readdir(d)) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git")) continue;
      struct stat st {};
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      names.emplace_back(e->d_name, S_ISDIR(st.st_mode));
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    std::vector<std::string> subdirs;
    for (auto& [name, is_dir] : names) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      if (out.size() >= kMaxEntries)
        return err("the folder has more than " + std::to_string(kMaxEntries) + " entries; copy a smaller tree");
      out.push_back({child, is_dir});
      if (is_dir) subdirs.push_back(child);
    }
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) pending.push_back(std::move(*it));
  }
  return ok_status();
}

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

bool is_within(const std::string& top, const std::string& folder) {
  if (top == "/") return true;
  return folder == top || (folder.size() > top.size() && folder.compare(0, top.size(), top) == 0 && folder[top.size()] == '/');
}

// A buffered writer to the stream; a failed write (the writer went away)
// is remembered and makes every later put a no-op.
class Out {
 public:
  explicit Out(int fd) : fd_(fd) { buf_.reserve(kBuf); }
  void put(std::string_view s) {
    if (gone_) return;
    if (buf_.size() + s.size() > kBuf) flush();
    if (s.size() >= kBuf) {
      if (!gone_ && !write_all(fd_, s)) gone_ = true;
      return;
    }
    buf_.append(s);
  }
  void flush() {
    if (!gone_ && !buf_.empty() && !write_all(fd_, buf_)) gone_ = true;
    buf_.clear();
  }
  bool gone() const { return gone_; }

 private:
  static constexpr size_t kBuf = 256 * 1024;
  int fd_;
  std::string buf_;
  bool gone_ = false;
};

// Which component of `path` is a symbolic link, for the refusal's message
// (each prefix opened beneath the root, the last one without following).
std::string find_link(int root_fd, const std::string& path) {
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    int fd = open_beneath(root_fd, prefix.c_str(), O_PATH | O_NOFOLLOW);
    if (fd < 0) return {};
    struct stat st {};
    bool link = fstat(fd, &st) == 0 && S_ISLNK(st.st_mode);
    close(fd);
    if (link) return prefix;
  }
  return {};
}

// Root reads a tree only when no one else can change the folders above it
// (broker/tree_owner.cpp). Inside it, another user's file (theirs, or a
// hard link they made to something they can read) would be carried into
// the job with root's reach: as root, only root's own entries are copied.
std::string not_roots(const std::string& path, uid_t uid) {
  return "`" + path + "` belongs to uid " + std::to_string(uid) +
         ", but the tree is root's and is copied as root, which copies only root's files; chown it to root, remove it, "
         "or give the whole tree to the user who works on it";
}

Status root_may_copy(int fd, const std::string& path) {
  struct stat st {};
  if (geteuid() != 0) return ok_status();
  if (fstat(fd, &st) != 0) return err("cannot stat " + path + ": " + strerror(errno));
  if (st.st_mode & 022)
    return err(path + " is root's but writable by its group or by others, so other users' files could be copied as "
               "root; chmod go-w it, or give it to the user who works on it");
  return ok_status();
}

}  // namespace

Result<Listing> list_tree(const std::string& folder) {
  auto folder_fd = open_folder(folder, false);
  if (!folder_fd) return folder_fd.error();
  Listing l;
  auto top = run_git(folder_fd->get(), {"rev-parse", "--show-toplevel"});
  if (!top) return top.error();
  const bool git_missing = top->status == 127;
  if (top->status != 0 && !git_missing && top->err.find("not a git repository") == std::string::npos)
    return err("git could not read " + folder + ": " + one_line(top->err));
  if (top->status != 0) {  // not a work tree (or no git at all): the folder itself
    l.info.description = "the folder " + folder;
    l.info.source = folder;
    l.root = folder;
    l.root_fd = std::move(*folder_fd);
    if (auto s = root_may_copy(l.root_fd.get(), folder); !s) return s.error();
    if (auto s = walk(l.root_fd.get(), l.entries); !s) return s.error();
    return l;
  }
  l.root = trim_newline(top->out);
  if (l.root.empty() || l.root[0] != '/' || !is_within(l.root, folder))
    return err("git named `" + one_line(l.root) + "` as the work tree of " + folder + ", which does not hold it; refusing");
  auto root_fd = open_folder(l.root, true);
  if (!root_fd) return root_fd.error();
  l.root_fd = std::move(*root_fd);
  if (auto s = root_may_copy(l.root_fd.get(), l.root); !s) return s.error();
  auto listing = run_git(l.root_fd.get(), {"ls-files", "-z", "--cached", "--others", "--exclude-standard"});
  if (!listing) return listing.error();
  if (listing->status != 0) return err("git ls-files failed in " + l.root + ": " + one_line(listing->err));
  std::unordered_set<std::string_view> seen;  // a conflicted path is listed once per stage
  std::string_view rest = listing->out;
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    std::string_view p = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (p.empty() || !seen.insert(p).second) continue;
    Listed e;
    // An untracked nested repository is listed as `dir/`: copy the folder only.
    if (p.size() > 1 && p.back() == '/') {
      e.dir = true;
      p.remove_suffix(1);
    }
    e.path = std::string(p);
    if (l.entries.size() >= kMaxEntries)
      return err("the work tree has more than " + std::to_string(kMaxEntries) + " files; copy a smaller tree");
    l.entries.push_back(std::move(e));
  }
  l.info.git = true;
  l.info.source = l.root;
  l.info.description = "the git work tree " + l.root;
  l.info.reponame = l.root.substr(l.root.rfind('/') + 1);
  if (auto b = run_git(l.root_fd.get(), {"rev-parse", "--abbrev-ref", "HEAD"}); b && b->status == 0)
    l.info.branch = trim_newline(b->out).substr(0, kMaxBranch);
  if (auto s = run_git(l.root_fd.get(), {"rev-parse", "HEAD"}); s && s->status == 0)
    l.info.sha1 = trim_newline(s->out).substr(0, kMaxSha1);
  return l;
}

ReadResult stream_tree(const Listing& listing, int out_fd) {
  ReadResult res;
  Out out(out_fd);
  auto refuse = [&](std::string m) {
    res.failure = ReadFailure::Refused;
    res.message = std::move(m);
    return res;
  };
  auto gone = [&]() {
    res.failure = ReadFailure::WriterGone;
    res.message = "the writer stopped reading";
    return res;
  };
  const int root = listing.root_fd.get();
  const bool as_root = geteuid() == 0;
  if (auto s = check_info(listing.info); !s) return refuse(s.error().message);
  out.put(record(RecordType::Info, listing.info));

  std::set<std::string> dirs;  // folders already sent
  LinkSet links;
  std::string parent_path;
  UniqueFd parent_fd;
  bool parent_open = false;
  std::vector<char> buf(256 * 1024);
  for (const Listed& e : listing.entries) {
    if (out.gone()) return gone();
    if (auto s = check_path(e.path); !s) return refuse(s.error().message);
    if (auto link = links.covering(e.path); !link.empty()) return refuse(under_link_message(e.path, link));
    auto [parent, name] = split_parent(e.path);
    if (!parent_open || parent != parent_path) {
      parent_open = false;
      int fd = parent.empty() ? dup(root) : open_beneath(root, parent.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW);
      if (fd < 0) {
        const int why = errno;
        // A link as the last component fails O_DIRECTORY (ENOTDIR), one
        // further up fails RESOLVE_NO_SYMLINKS (ELOOP): name it either way.
        if (why == ELOOP || why == ENOTDIR) {
          std::string link = find_link(root, e.path);
          if (!link.empty()) return refuse(under_link_message(e.path, link));
        }
        if (why == ENOENT || why == ENOTDIR) continue;  // deleted since git listed it
        if (why == ELOOP)
          return refuse("`" + e.path + "` changed while it was being copied (a folder on its path was a symbolic link); run again when the tree is quiet");
        return refuse("cannot open `" + parent + "`: " + strerror(why));
      }
      parent_fd = UniqueFd(fd);
      parent_path = parent;
      parent_open = true;
      // Its folders first, each once.
      for (size_t slash = parent.find('/'); !parent.empty(); slash = parent.find('/', slash + 1)) {
        std::string d = parent.substr(0, slash);
        if (dirs.insert(d).second) out.put(record(RecordType::Dir, Dir{d, kDirMode}));
        if (slash == std::string::npos) break;
      }
    }
    struct stat st {};
    if (fstatat(parent_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return refuse("cannot stat `" + e.path + "`: " + strerror(errno));
    }
    if (as_root && st.st_uid != 0) return refuse(not_roots(e.path, st.st_uid));
    if (S_ISLNK(st.st_mode)) {
      if (dirs.count(e.path) != 0)
        return refuse("`" + e.path + "` changed from a folder to a symbolic link while it was being copied; run again when the tree is quiet");
      std::string target(kMaxTarget + 1, '\0');
      ssize_t n = readlinkat(parent_fd.get(), name.c_str(), target.data(), target.size());
      if (n < 0) return refuse("cannot read the link `" + e.path + "`: " + strerror(errno));
      if (static_cast<size_t>(n) > kMaxTarget)
        return refuse("the link `" + e.path + "` has a target longer than " + std::to_string(kMaxTarget) + " bytes");
      if (n == 0) return refuse("the link `" + e.path + "` has an empty target");
      target.resize(static_cast<size_t>(n));
      links.add(e.path);
      out.put(record(RecordType::Symlink, Symlink{e.path, target}));
      ++res.end.files;
    } else if (S_ISDIR(st.st_mode)) {
      if (dirs.insert(e.path).second) out.put(record(RecordType::Dir, Dir{e.path, kDirMode}));
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd fd(open_beneath(parent_fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
      if (fd.get() < 0) {
        if (errno == ENOENT) continue;
        if (errno == ELOOP) return refuse("`" + e.path + "` became a symbolic link while it was being copied; refusing to follow it");
        return refuse("cannot open `" + e.path + "`: " + strerror(errno));
      }
      if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return refuse("`" + e.path + "` changed while it was being copied; run again when the tree is quiet");
      if (as_root && st.st_uid != 0) return refuse(not_roots(e.path, st.st_uid));
      const uint64_t size = static_cast<uint64_t>(st.st_size);
      if (size > kMaxBytes - res.end.bytes) return refuse("the tree holds more than 4 GiB of files; copy a smaller tree");
      out.put(record(RecordType::File, File{e.path, file_mode(st.st_mode), size}));
      uint64_t left = size;
      while (left > 0) {
        ssize_t n = read(fd.get(), buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size())));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return refuse("cannot read `" + e.path + "`: " + strerror(errno));
        if (n == 0) return refuse("`" + e.path + "` shrank while it was being copied; run again when the tree is quiet");
        out.put(std::string_view(buf.data(), static_cast<size_t>(n)));
        if (out.gone()) return gone();
        left -= static_cast<uint64_t>(n);
      }
      res.end.bytes += size;
      ++res.end.files;
    }
    // Sockets, FIFOs and devices are not copied.
  }
  out.put(record(RecordType::End, res.end));
  out.flush();
  if (out.gone()) return gone();
  return res;
}

}  // namespace gh::checkout
