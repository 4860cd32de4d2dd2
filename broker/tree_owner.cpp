// Who reads a work tree: the rule, and why it cannot be steered.
//
// The broker (root) must choose a uid for the checkout reader without
// itself reading the tree, and a user who can write some directory on the
// job file's path may swap anything in it for a symbolic link at any
// moment: between our look and the reader's open, or during the copy.
//
//  * The reader runs as the OWNER of the folder holding the job file. As a
//    non-root uid it can read only what that uid could read anyway, so
//    wherever a swap sends it, it gains nothing its owner lacks. The
//    reader re-opens the folder itself and fstat()s it: if it is not owned
//    by the reader's own uid (the folder was swapped for a link to someone
//    else's tree, root's included), it refuses before reading anything.
//  * If the owner is root, the reader runs as root, so the path must be
//    one only root can change. The path is resolved here by hand, one
//    component at a time with O_PATH|O_NOFOLLOW (links read and followed
//    explicitly, `..` applied to the real path), and every directory entry
//    used along the way must be one no other user can replace: its
//    directory is root's and not writable by group or others, or is sticky
//    (like /tmp) and the entry itself is root's. A link is such an entry
//    too, so a user's link to a root-owned tree (`repo/.circleci ->
//    /etc`) does not make the copy root's: the whole way there is judged.
//    The folder itself must not be writable by group or others even when
//    sticky: root would copy what other users put in it (their private
//    files in /tmp). Anything else refuses, naming the directory.
//  * Inside the tree, the reader opens everything beneath one descriptor of
//    its root without following links (checkout/reader.cpp), and as root it
//    copies only root's own files, so another user's file placed in (or
//    hard-linked into) a root-owned tree is refused, not carried into the job.
//
// What stays: a user who owns a directory on the path can send a non-root
// reader to another tree of the SAME owner; it reads nothing that owner
// could not. The operator chose the path.
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "broker/checkout.hpp"
#include "common/unique_fd.hpp"

namespace gh::broker {

namespace {

constexpr int kMaxLinks = 40;  // as the kernel's own resolution

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += "/" + p;
  return s.empty() ? "/" : s;
}

// Can no one but root replace `entry` in the directory `dir`?
bool fixed_by_root(const struct stat& dir, const struct stat& entry) {
  if (dir.st_uid != 0) return false;
  if ((dir.st_mode & 022) == 0) return true;
  return (dir.st_mode & S_ISVTX) != 0 && entry.st_uid == 0;
}

std::string who_can_change(const struct stat& dir) {
  if (dir.st_uid != 0) return "it belongs to uid " + std::to_string(dir.st_uid);
  if (dir.st_mode & S_ISVTX) return "it is sticky and writable by others, and the entry in it is not root's";
  return "it is writable by its group or by others";
}

gid_t primary_gid(uid_t uid) {
  // Read directly (fgetpwent needs no NSS modules, which a static broker
  // cannot load); a uid without an entry gets the overflow group.
  FILE* f = fopen("/etc/passwd", "re");
  if (!f) return 65534;
  gid_t gid = 65534;
  while (passwd* pw = fgetpwent(f))
    if (pw->pw_uid == uid) {
      gid = pw->pw_gid;
      break;
    }
  fclose(f);
  return gid;
}

Result<UniqueFd> open_root(struct stat& st) {
  UniqueFd fd(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) return err(std::string("cannot open /: ") + strerror(errno));
  return fd;
}

std::deque<std::string> split(const std::string& path) {
  std::deque<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

}  // namespace

Result<TreeOwner> tree_owner(const std::string& file) {
  std::string abs = file;
  if (abs.empty()) return err("no job file was named");
  if (abs[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return err(std::string("cannot find the current folder: ") + strerror(errno));
    abs = std::string(cwd) + "/" + abs;
  }
  std::deque<std::string> todo = split(abs);
  std::vector<std::string> done;  // the real path so far, every component a directory
  struct stat cur_st {};
  auto cur = open_root(cur_st);
  if (!cur) return cur.error();
  std::string changeable, why;  // the first directory a non-root user can change, and how
  int links = 0;
  TreeOwner out;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      // The real path has no links, so its parent is lexical: walk it again.
      if (!done.empty()) done.pop_back();
      auto r = open_root(cur_st);
      if (!r) return r.error();
      cur = std::move(r);
      for (const auto& d : done) {
        UniqueFd next(openat(cur->get(), d.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (next.get() < 0 || fstat(next.get(), &cur_st) != 0)
          return err(abs + " changed while it was being resolved (" + join(done) + "); run again");
        *cur = std::move(next);
      }
      continue;
    }
    UniqueFd next(openat(cur->get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (next.get() < 0 || fstat(next.get(), &st) != 0)
      return err("cannot find " + abs + ": " + join(done) + (done.empty() ? "" : "/") + c + ": " + strerror(errno));
    if (changeable.empty() && !fixed_by_root(cur_st, st)) {
      changeable = join(done);
      why = who_can_change(cur_st);
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxLinks) return err("cannot resolve " + abs + ": too many symbolic links");
      char target[PATH_MAX];
      ssize_t n = readlinkat(cur->get(), c.c_str(), target, sizeof target - 1);
      if (n <= 0) return err("cannot read the link " + join(done) + "/" + c + ": " + strerror(errno));
      std::deque<std::string> more = split(std::string(target, static_cast<size_t>(n)));
      todo.insert(todo.begin(), more.begin(), more.end());
      if (target[0] == '/') {
        done.clear();
        auto r = open_root(cur_st);
        if (!r) return r.error();
        cur = std::move(r);
      }
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      done.push_back(c);
      *cur = std::move(next);
      cur_st = st;
      continue;
    }
    if (!todo.empty()) return err("cannot resolve " + abs + ": " + join(done) + "/" + c + " is not a folder");
    out.name = c;
  }
  if (out.name.empty()) return err(abs + " is a folder, not a job file");
  out.folder = join(done);
  out.uid = cur_st.st_uid;
  out.dev = cur_st.st_dev;
  out.ino = cur_st.st_ino;
  if (out.uid == 0) {
    if (!changeable.empty())
      return err(out.folder + " is root's, but " + changeable + " on the way to it can be changed by another user (" + why +
                 "); root copies only trees that no one else can redirect. Give the tree to the user who works on it "
                 "(chown -R), or move it under folders only root can write");
    if (cur_st.st_mode & 022)
      return err(out.folder + " is root's but writable by its group or by others, so other users' files could be copied "
                 "as root; chmod go-w it, or give it to the user who works on it");
  }
  out.gid = out.uid == 0 ? 0 : primary_gid(out.uid);
  return out;
}

}  // namespace gh::broker
