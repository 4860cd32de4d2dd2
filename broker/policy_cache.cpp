// The cache of parsed policies (policy_cache.hpp).
#include "broker/policy_cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "common/sha256.hpp"
#include "common/unique_fd.hpp"

namespace gh::broker {

namespace {

constexpr const char* kSuffix = ".policy";

// A failing libcrypto gives "", which no entry is named: no cache, no harm.
std::string sha256_hex(std::string_view data) { return gh::sha256_hex(data); }

// Root's and nobody else's: otherwise another user could plant an answer.
bool trusted(const struct stat& st, bool directory) {
  return (directory ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) && st.st_uid == 0 && (st.st_mode & 077) == 0;
}

// The folder, opened without following a link and checked; -1 when missing
// or untrusted.
UniqueFd open_dir(const std::string& dir, bool create) {
  if (dir.empty()) return UniqueFd();
  if (create && mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return UniqueFd();
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0 || !trusted(st, true)) return UniqueFd();
  return fd;
}

// Removes the oldest entries past kMaxPolicyCacheEntries (each binary
// upgrade and policy edit leaves one behind until /run is cleared).
void prune(int dirfd) {
  UniqueFd copy(fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  if (copy.get() < 0) return;
  DIR* d = fdopendir(copy.get());
  if (d == nullptr) return;
  copy.release();  // the DIR owns it now
  std::vector<std::pair<struct timespec, std::string>> entries;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    struct stat st {};
    if (name.size() > 7 && name.ends_with(kSuffix) && fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      entries.emplace_back(st.st_mtim, name);
  }
  closedir(d);
  if (entries.size() <= kMaxPolicyCacheEntries) return;
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.first.tv_sec != b.first.tv_sec ? a.first.tv_sec < b.first.tv_sec : a.first.tv_nsec < b.first.tv_nsec;
  });
  for (size_t i = 0; i + kMaxPolicyCacheEntries < entries.size(); ++i) unlinkat(dirfd, entries[i].second.c_str(), 0);
}

}  // namespace

std::string policy_cache_key(ipc::ParseKind kind, std::string_view bytes, const struct stat& parser) {
  std::string k = "gatehouse-policy-cache v1\nkind " + std::to_string(static_cast<uint32_t>(kind)) + "\ninput " +
                  sha256_hex(bytes) + "\nparser " + std::to_string(parser.st_dev) + ":" +
                  std::to_string(parser.st_ino) + ":" + std::to_string(parser.st_size) + ":" +
                  std::to_string(parser.st_mtim.tv_sec) + "." + std::to_string(parser.st_mtim.tv_nsec) + "\n";
  return sha256_hex(k);
}

std::optional<std::string> policy_cache_load(const std::string& dir, const std::string& key) {
  UniqueFd d = open_dir(dir, false);
  if (d.get() < 0 || key.empty()) return std::nullopt;
  UniqueFd f(openat(d.get(), (key + kSuffix).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (f.get() < 0 || fstat(f.get(), &st) != 0 || !trusted(st, false) ||
      static_cast<uint64_t>(st.st_size) > ipc::kParseFrameHeaderBytes + ipc::kMaxParseResultBytes)
    return std::nullopt;
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = read(f.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    got += static_cast<size_t>(n);
  }
  return data;
}

bool policy_cache_store(const std::string& dir, const std::string& key, const std::string& frame) {
  UniqueFd d = open_dir(dir, true);
  if (d.get() < 0 || key.empty()) return false;
  const std::string name = key + kSuffix;
  const std::string tmp = name + ".tmp." + std::to_string(getpid());
  UniqueFd f(openat(d.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (f.get() < 0) return false;
  bool ok = fchmod(f.get(), 0600) == 0;  // whatever the umask made of it
  for (size_t done = 0; ok && done < frame.size();) {
    const ssize_t n = write(f.get(), frame.data() + done, frame.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  // No fsync: the folder is on /run (tmpfs), and a torn entry elsewhere is
  // refused by decoding like any malformed answer.
  f = UniqueFd();
  if (!ok || renameat(d.get(), tmp.c_str(), d.get(), name.c_str()) != 0) {
    unlinkat(d.get(), tmp.c_str(), 0);
    return false;
  }
  prune(d.get());
  return true;
}

}  // namespace gh::broker
