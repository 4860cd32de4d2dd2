#include "agent/token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "protocol/protocol.hpp"

namespace gh::agent {

namespace {

std::string octal_mode(mode_t m) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// Checks every directory from / down to the one holding the file: nobody
// but root may be able to swap something in on the way (a world-writable
// directory only when sticky, like /tmp). Returns the holding directory.
UniqueFd open_parent_securely(const std::string& resolved, std::vector<std::string>& problems) {
  UniqueFd fd(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    problems.push_back(std::string("cannot open /: ") + strerror(errno));
    return UniqueFd();
  }
  const size_t last_slash = resolved.rfind('/');
  std::string walked = "/";
  size_t pos = 1;
  for (;;) {
    struct stat st{};
    if (fstat(fd.get(), &st) != 0) {
      problems.push_back("cannot stat " + walked + ": " + strerror(errno));
      return UniqueFd();
    }
    if (st.st_uid != 0)
      problems.push_back("directory " + walked + " is owned by uid " + std::to_string(st.st_uid) +
                         ", so that user could replace the token: run `chown root " + walked + "`");
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
      problems.push_back("directory " + walked + " is writable by group or others (mode " + octal_mode(st.st_mode) +
                         "): run `chmod go-w " + walked + "`");
    if (pos > last_slash) return fd;
    const size_t slash = resolved.find('/', pos);
    const std::string comp = resolved.substr(pos, slash - pos);
    walked = resolved.substr(0, slash);
    pos = slash + 1;
    UniqueFd next(openat(fd.get(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      problems.push_back("cannot open " + walked + ": " + strerror(errno) + " (did it change while being checked?)");
      return UniqueFd();
    }
    fd = std::move(next);
  }
}

// Opens name under dirfd and checks what the file is before anything of it
// is read: a regular file, owned by root (or by `owner`), no group or other
// permission, small enough to be a token.
Result<UniqueFd> open_token_file(int dirfd, const std::string& name, const std::string& shown_path, const char* fix_hint,
                                 uid_t owner, std::vector<std::string>& problems) {
  UniqueFd f(openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (f.get() < 0) return err("cannot open the runner token file " + shown_path + ": " + strerror(errno) + fix_hint);
  struct stat st{};
  if (fstat(f.get(), &st) != 0) return err("cannot stat the runner token file " + shown_path + ": " + strerror(errno));
  if (!S_ISREG(st.st_mode)) return err("the runner token file " + shown_path + " is not a regular file");
  if (st.st_uid != 0 && st.st_uid != owner)
    problems.push_back("the runner token file " + shown_path + " is owned by uid " + std::to_string(st.st_uid) +
                       ", not root: run `chown root " + shown_path + "`");
  if (st.st_mode & 077)
    problems.push_back("the runner token file " + shown_path + " is readable or writable by group or others (mode " +
                       octal_mode(st.st_mode) + "): run `chmod 600 " + shown_path + "`");
  if (static_cast<uint64_t>(st.st_size) > kMaxTokenFileBytes)
    problems.push_back("the runner token file " + shown_path + " is " + std::to_string(st.st_size) +
                       " bytes; a token is at most 256 characters");
  if (!problems.empty()) return err("");
  return f;
}

Status join_problems(std::vector<std::string>& problems) {
  if (problems.empty()) return ok_status();
  std::string all = "the runner token cannot be trusted:";
  for (const auto& p : problems) all += "\n  " + p;
  return err(all);
}

}  // namespace

Result<UniqueFd> open_runner_token(const std::string& path, const char* credentials_directory) {
  std::vector<std::string> problems;
  if (credentials_directory && *credentials_directory) {
    // systemd made this folder (root's, on a private ramfs): only the file is checked.
    const std::string dir = credentials_directory;
    UniqueFd d(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (d.get() < 0) return err("cannot open $CREDENTIALS_DIRECTORY " + dir + ": " + strerror(errno));
    auto t = open_token_file(d.get(), kCredentialName, dir + "/" + kCredentialName,
                             " (add LoadCredential=gatehouse-token:/etc/gatehouse/token to the unit)", geteuid(), problems);
    if (auto s = join_problems(problems); !s) return s.error();
    return t;
  }
  if (path.empty()) return err("no runner token: set api.auth_token_file, or give the unit LoadCredential=gatehouse-token:FILE");
  std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr), &free);
  if (!real) {
    const int e = errno;
    if (e == ENOENT)
      return err("the runner token file " + path + " does not exist: write the runner's token there and run `chmod 600 " +
                 path + "`");
    return err("cannot resolve the runner token file " + path + ": " + strerror(e));
  }
  const std::string resolved = real.get();
  UniqueFd parent = open_parent_securely(resolved, problems);
  if (parent.get() < 0) {
    if (auto s = join_problems(problems); !s) return s.error();
    return err("cannot open the directory of the runner token file " + path);
  }
  auto t = open_token_file(parent.get(), resolved.substr(resolved.rfind('/') + 1), path, "", 0, problems);
  if (auto s = join_problems(problems); !s) return s.error();
  return t;
}


Result<std::string> read_runner_token(int fd, const std::string& shown) {
  std::string text(kMaxTokenFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err("cannot read the runner token from " + shown + ": " + strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxTokenFileBytes) return err("the runner token in " + shown + " is longer than a token can be");
  text.resize(got);
  if (text.ends_with("\r\n")) text.resize(text.size() - 2);
  else if (text.ends_with("\n")) text.pop_back();
  if (std::string why = protocol::token_problem(text); !why.empty()) {
    // The token itself is never shown, only where it is and what is wrong.
    return err("the runner token in " + shown + " is not valid: it " + why +
               "; put the token from the control plane there, on one line");
  }
  return text;
}

}  // namespace gh::agent
