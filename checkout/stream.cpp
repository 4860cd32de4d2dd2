#include "checkout/stream.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gh::checkout {

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

bool has_control(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

size_t max_payload(uint32_t type) {
  // Each bound is the largest encoding of the record's fields (4 bytes per
  // length prefix), so a header asking for more is refused unread.
  constexpr size_t kInfo = 6 * 4 + 1 + (kMaxInfoString + 64) + kMaxInfoString + kMaxBranch + kMaxSha1 + kMaxInfoString;
  switch (type) {
    case static_cast<uint32_t>(RecordType::Info): return kInfo;
    case static_cast<uint32_t>(RecordType::Dir): return 4 + kMaxPath + 4;
    case static_cast<uint32_t>(RecordType::File): return 4 + kMaxPath + 4 + 8;
    case static_cast<uint32_t>(RecordType::Symlink): return 4 + kMaxPath + 4 + kMaxTarget;
    case static_cast<uint32_t>(RecordType::End): return 16;
    case static_cast<uint32_t>(RecordType::Summary): return kInfo + 16;
    default: return 0;
  }
}

std::string frame(RecordType t, const std::string& payload) {
  std::string out;
  out.reserve(kRecordHeaderBytes + payload.size());
  put_u32(out, kStreamMagic);
  put_u32(out, static_cast<uint32_t>(t));
  put_u32(out, static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

Status check_path(std::string_view path) {
  const std::string shown(path.substr(0, 200));
  if (path.empty()) return err("the stream names an empty path");
  if (path.size() > kMaxPath) return err("a path is longer than " + std::to_string(kMaxPath) + " bytes (`" + shown + "...`)");
  if (path.find('\0') != std::string_view::npos) return err("a path has a NUL byte (`" + std::string(shown.c_str()) + "...`)");
  if (path[0] == '/') return err("`" + shown + "` is an absolute path; only paths inside the tree are copied");
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return err("`" + shown + "` has an empty component");
    if (part == "." || part == "..") return err("`" + shown + "` has a `" + std::string(part) + "` component; only paths inside the tree are copied");
    if (part == ".git") return err("`" + shown + "` is in a .git folder, which is never copied (it may hold credentials)");
    if (slash == std::string_view::npos) return ok_status();
    start = slash + 1;
  }
}

uint32_t file_mode(uint32_t mode) { return (mode & 0100) ? 0755 : 0644; }

Status check_info(const Info& info) {
  for (const std::string* s : {&info.description, &info.source, &info.branch, &info.sha1, &info.reponame})
    if (has_control(*s)) return err("the stream's info record has a control character in `" + s->substr(0, 200) + "`");
  return ok_status();
}

std::string LinkSet::covering(std::string_view path) const {
  if (links_.empty()) return {};
  for (size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
    std::string prefix(path.substr(0, slash));
    if (links_.count(prefix) != 0) return prefix;
  }
  return {};
}

std::string under_link_message(std::string_view path, std::string_view link) {
  return "`" + std::string(path) + "` lies under `" + std::string(link) +
         "`, a symbolic link; refusing to copy through it (replace the link by a real folder, or remove `" +
         std::string(path) + "` from the tree)";
}

Status StreamReader::read_exact(char* buf, size_t n, const char* what) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd_, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err(std::string("cannot read the stream: ") + strerror(errno));
    if (r == 0)
      return err(std::string("the stream is truncated: it ends in the middle of ") + what + " at byte " +
                 std::to_string(offset_ + got));
    got += static_cast<size_t>(r);
  }
  offset_ += n;
  return ok_status();
}

Status StreamReader::next(RecordType& type, std::string& payload) {
  char head[kRecordHeaderBytes];
  size_t got = 0;
  while (got < sizeof head) {
    ssize_t r = read(fd_, head + got, sizeof head - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err(std::string("cannot read the stream: ") + strerror(errno));
    if (r == 0) {
      if (got == 0) return err("the stream is truncated: it ends before its end record");
      return err("the stream is truncated: it ends in the middle of a record header at byte " + std::to_string(offset_ + got));
    }
    got += static_cast<size_t>(r);
  }
  const uint32_t magic = get_u32(head), t = get_u32(head + 4), len = get_u32(head + 8);
  if (magic != kStreamMagic)
    return err("the stream is out of step at byte " + std::to_string(offset_) +
               ": a record header has the wrong magic (a file's content did not match its size?)");
  const size_t max = max_payload(t);
  if (max == 0) return err("the stream has a record of unknown type " + std::to_string(t) + " at byte " + std::to_string(offset_));
  if (len > max)
    return err("the stream has a record of " + std::to_string(len) + " bytes at byte " + std::to_string(offset_) +
               " where at most " + std::to_string(max) + " may be");
  offset_ += kRecordHeaderBytes;
  type = static_cast<RecordType>(t);
  payload.assign(len, '\0');
  return read_exact(payload.data(), len, "a record");
}

Status StreamReader::content(char* buf, size_t want) { return read_exact(buf, want, "a file's content"); }

Status StreamReader::expect_eof() {
  char c;
  for (;;) {
    ssize_t r = read(fd_, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err(std::string("cannot read the stream: ") + strerror(errno));
    if (r == 0) return ok_status();
    return err("the stream goes on after its end record (byte " + std::to_string(offset_) + ")");
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t w = write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

}  // namespace gh::checkout
