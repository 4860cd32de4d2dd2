// The checkout stream: what the checkout reader (running as the work tree's
// owner) hands the checkout writer (running as the job's uid), and what the
// broker hands the writer itself for a task's job file.
//
// A stream is records, each a 12-byte header (magic, type, payload length)
// then a payload encoded with ipc/codec.hpp; a File record is followed by
// exactly `size` raw bytes of content. The order is fixed:
//
//   Info, then any number of Dir / File / Symlink, then End, then nothing.
//
// The writer treats every byte as hostile (the reader parses a tree its
// owner controls, and the owner may ptrace the reader): framing is checked
// before meaning (magic, type, a bound per type on the payload), every
// string has a bound, every path is checked by check_path() on both sides,
// and End's counts must match what was actually sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/result.hpp"
#include "ipc/codec.hpp"

namespace gh::checkout {

inline constexpr uint32_t kStreamMagic = 0x4b434847;  // "GHCK"
inline constexpr size_t kRecordHeaderBytes = 12;
inline constexpr size_t kMaxPath = 4096;
inline constexpr size_t kMaxTarget = 4096;
inline constexpr size_t kMaxInfoString = 4096;
inline constexpr size_t kMaxBranch = 1024;
inline constexpr size_t kMaxSha1 = 64;
inline constexpr size_t kMaxEntries = 200000;
inline constexpr uint64_t kMaxBytes = 4ull << 30;  // 4 GiB of file contents

enum class RecordType : uint32_t { Info = 1, Dir = 2, File = 3, Symlink = 4, End = 5, Summary = 6 };

struct Info {
  std::string description;  // "the git work tree /src/app", "the folder /src/app", "the task's job file"
  std::string source;       // the work tree or folder copied; "" for a task's job file
  bool git = false;
  std::string branch, sha1, reponame;
};
struct Dir {
  std::string path;
  uint32_t mode = 0755;
};
struct File {
  std::string path;
  uint32_t mode = 0644;
  uint64_t size = 0;  // this many raw bytes follow the record
};
struct Symlink {
  std::string path, target;
};
struct End {
  uint64_t files = 0;  // File and Symlink records sent
  uint64_t bytes = 0;  // content bytes sent
};
// The writer's answer on its stdout once everything is on disk.
struct Summary {
  Info info;
  uint64_t files = 0, bytes = 0;
};

template <class C>
void fields(C& c, Info& v) {
  c.str(v.description, kMaxInfoString + 64);
  c.str(v.source, kMaxInfoString);
  c.boolean(v.git);
  c.str(v.branch, kMaxBranch);
  c.str(v.sha1, kMaxSha1);
  c.str(v.reponame, kMaxInfoString);
}
template <class C>
void fields(C& c, Dir& v) {
  c.str(v.path, kMaxPath);
  c.u32(v.mode);
}
template <class C>
void fields(C& c, File& v) {
  c.str(v.path, kMaxPath);
  c.u32(v.mode);
  c.u64(v.size);
}
template <class C>
void fields(C& c, Symlink& v) {
  c.str(v.path, kMaxPath);
  c.str(v.target, kMaxTarget);
}
template <class C>
void fields(C& c, End& v) {
  c.u64(v.files);
  c.u64(v.bytes);
}
template <class C>
void fields(C& c, Summary& v) {
  fields(c, v.info);
  c.u64(v.files);
  c.u64(v.bytes);
}

// The largest payload a record of type `t` may declare (0: unknown type).
size_t max_payload(uint32_t type);

// Header + payload for one record; a File's content is sent after it.
std::string frame(RecordType t, const std::string& payload);
template <class T>
std::string record(RecordType t, const T& v) {
  return frame(t, ipc::encode(v));
}

// What a path in the stream may be: relative, at most kMaxPath bytes, no
// NUL, no empty, `.`, `..` or `.git` component. The same check runs in the
// reader (on git's listing) and in the writer (on the stream).
Status check_path(std::string_view path);
// Modes are masked, never trusted: 0755 for directories and executable
// files, 0644 for the rest (no setuid, setgid or sticky bit, no group or
// other write).
uint32_t file_mode(uint32_t mode);
inline constexpr uint32_t kDirMode = 0755;
// Info strings are shown to the operator and become environment variables:
// no control characters.
Status check_info(const Info& info);

// Symbolic links already placed in the copy: a later path beneath one of
// them must be refused, never written or read through it.
class LinkSet {
 public:
  void add(const std::string& path) { links_.insert(path); }
  // The link `path` lies under, or "" when none does.
  std::string covering(std::string_view path) const;

 private:
  std::unordered_set<std::string> links_;
};
std::string under_link_message(std::string_view path, std::string_view link);

// Reads records from a file descriptor, framing first: a header whose
// magic, type or length is wrong is refused before its payload is read.
class StreamReader {
 public:
  explicit StreamReader(int fd) : fd_(fd) {}
  // The next record's header; `type` and `payload` are set. EOF before a
  // header is an error ("ends before its end record").
  Status next(RecordType& type, std::string& payload);
  // Up to `want` content bytes; fails when the stream ends first.
  Status content(char* buf, size_t want);
  // Succeeds only at the end of the input.
  Status expect_eof();

 private:
  Status read_exact(char* buf, size_t n, const char* what);
  int fd_;
  uint64_t offset_ = 0;
};

template <class T>
Result<T> decode_record(const std::string& payload, const char* what) {
  auto v = ipc::decode<T>(payload);
  if (!v) return err(std::string("a malformed ") + what + " record: " + v.error().message);
  return v;
}

// Writes all of `data` to `fd`, retrying short writes. Sets errno on failure.
bool write_all(int fd, std::string_view data);

}  // namespace gh::checkout
