// Loading job secrets. The checks follow OpenSSH's secure_path: a file is
// only trusted if nobody but root can replace it, which means nobody but
// root can write the file or any directory on the way to it. The path is
// resolved once and then walked with O_NOFOLLOW from /, so what is checked
// is what is read: a symlink swapped in after the check fails the open.
#include "broker/secrets.hpp"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "common/secret_forms.hpp"
#include "common/unique_fd.hpp"

namespace gh::broker {

namespace {

std::string octal_mode(mode_t m) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

bool plain_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-'))
      return false;
  return true;
}

// One directory on the way to the secrets: root's, and writable by nobody
// else. An ancestor may be world-writable if it is sticky (/tmp): there only
// an entry's owner can rename or remove it, and the entry below is checked
// to be root's too. The secrets directory itself gets no such exception:
// anyone could add a file to it.
void check_dir(const std::string& path, const struct stat& st, bool is_secrets_dir, std::vector<std::string>& problems) {
  const std::string what = is_secrets_dir ? "secrets directory " + path : "secrets directory: its parent " + path;
  if (st.st_uid != 0)
    problems.push_back(what + " is owned by uid " + std::to_string(st.st_uid) + ", not root: run `chown root:root " +
                       path + "`");
  const bool sticky_ok = !is_secrets_dir && (st.st_mode & S_ISVTX);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_ok)
    problems.push_back(what + " is writable by group or others (mode " + octal_mode(st.st_mode) + "): run `chmod go-w " +
                       path + "`");
}

// Opens the secrets directory (O_PATH) after checking it and each directory
// above it. Returns -1 when it could not be opened or is not safe.
int open_secure_dir(const std::string& dir, std::vector<std::string>& problems) {
  if (dir.empty() || dir[0] != '/') {
    problems.push_back("secrets directory `" + dir + "` is not an absolute path: set secrets_dir to a path starting with /");
    return -1;
  }
  std::unique_ptr<char, decltype(&free)> real(realpath(dir.c_str(), nullptr), &free);
  if (!real) {
    int e = errno;
    if (e == ENOENT)
      problems.push_back("secrets directory " + dir + " does not exist: create it with `install -d -o root -g root -m 700 " +
                         dir + "`");
    else
      problems.push_back("secrets directory " + dir + " cannot be resolved: " + strerror(e));
    return -1;
  }
  const std::string resolved = real.get();
  const size_t before = problems.size();

  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    problems.push_back(std::string("secrets directory: cannot open /: ") + strerror(errno));
    return -1;
  }
  std::string walked;  // "" stands for "/"
  size_t pos = 1;
  for (;;) {
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      problems.push_back("secrets directory: cannot stat " + (walked.empty() ? std::string("/") : walked) + ": " +
                         strerror(errno));
      close(fd);
      return -1;
    }
    const std::string here = walked.empty() ? "/" : walked;
    const bool last = here == resolved;
    check_dir(here, st, last, problems);
    if (last) break;
    size_t slash = resolved.find('/', pos);
    if (slash == std::string::npos) slash = resolved.size();
    const std::string comp = resolved.substr(pos, slash - pos);
    walked += "/" + comp;
    pos = slash + 1;
    int next = openat(fd, comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(fd);
    if (next < 0) {
      problems.push_back("secrets directory: cannot open " + walked + ": " + strerror(e) +
                         (e == ELOOP || e == ENOTDIR ? " (it changed while being checked: try again)" : ""));
      return -1;
    }
    fd = next;
  }
  if (problems.size() != before) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads one secret; appends its problems (each a full line) and returns the
// value only if there were none.
bool read_secret(int dirfd, const std::string& dir, const policy::SecretExposure& want, std::string& value,
                 std::vector<std::string>& problems) {
  const std::string path = dir + (dir.size() > 1 && dir.back() == '/' ? "" : "/") + want.name;
  const std::string who = "secret `" + want.name + "`: ";
  if (!plain_name(want.name)) {
    problems.push_back(who + "the name is not a plain file name ([A-Za-z0-9_.-], at most 64): fix the policy");
    return false;
  }
  // O_NONBLOCK: a FIFO planted here must not hang the broker on open.
  UniqueFd fd(openat(dirfd, want.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    int e = errno;
    if (e == ENOENT)
      problems.push_back(who + path + " does not exist: create it (owned by root, mode 600) or remove the secret from the profile");
    else if (e == ELOOP)
      problems.push_back(who + path + " is a symbolic link: replace it with the file itself (owned by root, mode 600)");
    else
      problems.push_back(who + path + " cannot be opened: " + strerror(e));
    return false;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    problems.push_back(who + path + " cannot be examined: " + strerror(errno));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    problems.push_back(who + path + " is " + kind_of(st.st_mode) +
                       ": replace it with a regular file owned by root, mode 600");
    return false;
  }
  bool ok = true;
  if (st.st_uid != 0) {
    problems.push_back(who + path + " is owned by uid " + std::to_string(st.st_uid) + ", not root: run `chown root:root " +
                       path + "`");
    ok = false;
  }
  if (st.st_mode & 077) {
    problems.push_back(who + path + " is open to group or others (mode " + octal_mode(st.st_mode) + "): run `chmod 600 " +
                       path + "`");
    ok = false;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxSecretBytes) {
    problems.push_back(who + path + " is " + std::to_string(st.st_size) + " bytes; a secret is at most " +
                       std::to_string(kMaxSecretBytes) + " bytes");
    return false;
  }
  // Read one byte past the limit: the file may have grown since fstat.
  std::string buf(kMaxSecretBytes + 1, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      problems.push_back(who + path + " cannot be read: " + strerror(errno));
      explicit_bzero(buf.data(), buf.size());
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxSecretBytes) {
    problems.push_back(who + path + " is more than " + std::to_string(kMaxSecretBytes) + " bytes; a secret is at most " +
                       std::to_string(kMaxSecretBytes) + " bytes");
    explicit_bzero(buf.data(), buf.size());
    return false;
  }
  // Files written with `echo` end in one newline that is not part of the
  // secret; anything further is kept (the operator meant it).
  size_t len = got;
  if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n') len -= 2;
  else if (len >= 1 && buf[len - 1] == '\n') len -= 1;
  if (len < kMinSecretBytes) {
    problems.push_back(who + path + " is shorter than " + std::to_string(kMinSecretBytes) +
                       " bytes; short secrets cannot be masked reliably: use a longer secret");
    ok = false;
  }
  if (want.as == policy::SecretExposure::As::Env && memchr(buf.data(), '\0', len) != nullptr) {
    problems.push_back(who + path +
                       " contains a NUL byte, which an environment variable cannot hold: expose it as a file instead");
    ok = false;
  }
  if (ok) value.assign(buf.data(), len);
  explicit_bzero(buf.data(), buf.size());
  return ok;
}

}  // namespace

Result<std::vector<SecretValue>> load_secrets(const std::string& dir,
                                              const std::vector<policy::SecretExposure>& wanted) {
  std::vector<SecretValue> out;
  if (wanted.empty()) return out;
  std::vector<std::string> problems;
  UniqueFd dirfd(open_secure_dir(dir, problems));
  if (dirfd.get() >= 0) {
    for (const auto& w : wanted) {
      SecretValue v{w.name, {}};
      if (read_secret(dirfd.get(), dir, w, v.value, problems)) out.push_back(std::move(v));
    }
  }
  size_t pattern_bytes = 0;
  for (const auto& v : out) pattern_bytes += mask_pattern_bytes(v.value);
  if (pattern_bytes > kMaxMaskPatternBytes)
    problems.push_back("these secrets are too large to mask in job output (" + std::to_string(pattern_bytes) +
                       " bytes of encoded forms, at most " + std::to_string(kMaxMaskPatternBytes) +
                       "): expose fewer or smaller secrets (binary ones cost the most)");
  if (problems.empty()) return out;
  for (auto& v : out) explicit_bzero(v.value.data(), v.value.size());
  std::string msg;
  for (const auto& p : problems) {
    if (!msg.empty()) msg += '\n';
    msg += p;
  }
  return err(msg);
}

}  // namespace gh::broker
