// The audit log: append under a lock. The contract (format, events,
// failure policy) is in audit.hpp; `gatehouse audit verify` is cli/audit_verify.cpp.
#include "broker/audit.hpp"

#include "common/audit_chain.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace gh::broker {

namespace {

using nlohmann::json;

using audit::kZeroHash;
constexpr const char* kReserved[] = {"time", "seq", "prev", "hash"};

std::string errno_text(int e) { return std::strerror(e); }

std::string parent_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string rfc3339_now_utc() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

// Holds flock(LOCK_EX) for one append; released on every return path.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {}
  Status acquire() {
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return err("cannot lock the audit log: " + errno_text(errno));
    }
    held_ = true;
    return ok_status();
  }
  ~FileLock() {
    if (held_) flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
  bool held_ = false;
};

Status create_parent_if_missing(const std::string& path) {
  std::string dir = parent_of(path);
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return err("cannot open the audit log " + path + ": " + dir + " is not a directory");
    return ok_status();
  }
  if (errno != ENOENT) return err("cannot open the audit log " + path + ": " + dir + ": " + errno_text(errno));
  // One level only: a typo in audit.log must not grow a tree of directories.
  std::string grand = parent_of(dir);
  if (stat(grand.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return err("cannot open the audit log " + path + ": neither " + dir + " nor " + grand +
               " exists; create the directory or set audit.log in the policy");
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    return err("cannot create the audit log's directory " + dir + ": " + errno_text(errno));
  return ok_status();
}

Result<int> open_log_fd(const std::string& path) {
  if (path.empty()) return err("the audit log path is empty; set audit.log in the policy");
  if (auto s = create_parent_if_missing(path); !s) return s.error();
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    return err("refusing the audit log " + path +
               ": it is a symlink (whoever can change the link chooses where records go); point audit.log at the "
               "real file");
  // Read access too: append reads the last line to chain to it, through the
  // same open file (a second open by path could meet a different file).
  // O_NONBLOCK only so a FIFO planted at the path cannot hang the broker.
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_CREAT | O_NONBLOCK, 0640);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) return err("refusing the audit log " + path + ": it is a symlink; point audit.log at the real file");
    return err("cannot open the audit log " + path + ": " + errno_text(e));
  }
  auto fail = [fd](std::string m) -> Result<int> {
    ::close(fd);
    return err(std::move(m));
  };
  if (fstat(fd, &st) != 0) return fail("cannot stat the audit log " + path + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fail("refusing the audit log " + path + ": it is not a regular file");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail("refusing the audit log " + path + ": it is writable by group or others (mode " + mode +
                "), who could rewrite it; run chmod go-w " + path);
  }
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return fail("refusing the audit log " + path + ": it is owned by uid " + std::to_string(st.st_uid) +
                ", who could rewrite it; chown it to root");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
    return fail("cannot set up the audit log " + path + ": " + errno_text(errno));
  return fd;
}

struct Tail {
  std::string prev = kZeroHash;
  uint64_t seq = 0;
};

// The last complete line, found by reading backward at most one line's
// worth: the log may be gigabytes.
Result<Tail> read_tail(int fd, const std::string& path, off_t size) {
  const std::string verify_hint = "; run `gatehouse audit verify " + path + "`";
  Tail t;
  if (size == 0) return t;
  char last = 0;
  if (pread(fd, &last, 1, size - 1) != 1) return err("cannot read the audit log " + path + ": " + errno_text(errno));
  if (last != '\n')
    return err("the audit log " + path +
               " ends in an incomplete line (a write was cut short); no job runs until it is repaired" + verify_hint +
               ", keep a copy, and remove that line");
  off_t end = size - 1;  // the final newline
  off_t want = std::min<off_t>(end, static_cast<off_t>(kMaxAuditLine) + 1);
  std::string window(static_cast<size_t>(want), '\0');
  off_t start = end - want;
  size_t got = 0;
  while (got < window.size()) {
    ssize_t n = pread(fd, window.data() + got, window.size() - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("cannot read the audit log " + path + ": " + (n < 0 ? errno_text(errno) : "short read"));
    got += static_cast<size_t>(n);
  }
  auto nl = window.rfind('\n');
  if (nl == std::string::npos && start > 0)
    return err("the last line of the audit log " + path + " is longer than 64 KiB" + verify_hint);
  std::string line = nl == std::string::npos ? window : window.substr(nl + 1);
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned() ||
      j["seq"].get<uint64_t>() == 0)
    return err("the last line of the audit log " + path + " is not an audit record" + verify_hint);
  t.prev = audit::sha256_hex(line);
  t.seq = j["seq"].get<uint64_t>();
  return t;
}

Status write_all_or_cut_back(int fd, const std::string& path, const std::string& bytes, off_t old_size) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      // Cut a partial line back off, so a full disk does not leave a torn
      // tail that stops every later job.
      if (ftruncate(fd, old_size) != 0) {
        return err("cannot write the audit log " + path + " (" + errno_text(e) +
                   ") nor remove the partial line; run `gatehouse audit verify " + path + "`");
      }
      return err("cannot write the audit log " + path + ": " + errno_text(e));
    }
    done += static_cast<size_t>(n);
  }
  return ok_status();
}

Status check_record(const json& record) {
  if (!record.is_object()) return err("an audit record must be a JSON object");
  auto ev = record.find("event");
  if (ev == record.end() || !ev->is_string() || ev->get_ref<const std::string&>().empty())
    return err("an audit record must have a non-empty string \"event\"");
  for (const char* k : kReserved)
    if (record.contains(k)) return err(std::string("an audit record may not set \"") + k + "\": the log sets it");
  return ok_status();
}

}  // namespace

Result<AuditLog> AuditLog::open(const std::string& path) {
  auto fd = open_log_fd(path);
  if (!fd) return fd.error();
  return AuditLog(path, *fd);
}

AuditLog::AuditLog(AuditLog&& other) noexcept : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

AuditLog& AuditLog::operator=(AuditLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

// After a rotation (rename + new file) the path names another file than
// the one we hold: follow the path, so a long-lived broker does not go on
// writing to the rotated-away file.
Status AuditLog::reopen() {
  auto fd = open_log_fd(path_);
  if (!fd) return fd.error();
  ::close(fd_);
  fd_ = *fd;
  return ok_status();
}

Status AuditLog::append(json record) {
  if (fd_ < 0) return err("the audit log is not open");
  if (auto s = check_record(record); !s) return s;
  try {
    for (int attempt = 0; attempt < 3; ++attempt) {
      {
        FileLock lock(fd_);
        if (auto s = lock.acquire(); !s) return s;
        struct stat held {}, by_path {};
        if (fstat(fd_, &held) != 0) return err("cannot stat the audit log " + path_ + ": " + errno_text(errno));
        bool rotated =
            stat(path_.c_str(), &by_path) != 0 || by_path.st_dev != held.st_dev || by_path.st_ino != held.st_ino;
        if (!rotated) return append_locked(std::move(record), held.st_size);
      }  // the old file's lock is released before the new file is opened
      if (auto s = reopen(); !s) return s;
    }
    return err("the audit log " + path_ + " keeps being replaced while we write; try again");
  } catch (const std::exception& e) {
    return err(std::string("cannot write an audit record: ") + e.what());
  }
}

Status AuditLog::append_locked(json record, off_t size) {
  auto tail = read_tail(fd_, path_, size);
  if (!tail) return tail.error();
  record["time"] = rfc3339_now_utc();
  record["seq"] = tail->seq + 1;
  record["prev"] = tail->prev;
  record["hash"] = audit::sha256_hex(audit::serialize(record));
  std::string line = audit::serialize(record);
  if (line.size() > kMaxAuditLine)
    return err("an audit record of " + std::to_string(line.size()) + " bytes is larger than the 64 KiB limit");
  line += '\n';
  if (auto s = write_all_or_cut_back(fd_, path_, line, size); !s) return s;
  if (fdatasync(fd_) != 0) return err("cannot flush the audit log " + path_ + ": " + errno_text(errno));
  return ok_status();
}

}  // namespace gh::broker
