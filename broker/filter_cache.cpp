#include "broker/filter_cache.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace gh::broker {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string cache_key(const sandbox::SeccompOptions& opts) {
  struct stat self {};
  std::string k = "gatehouse-seccomp-v1";
  if (stat("/proc/self/exe", &self) == 0)
    k += "|" + std::to_string(self.st_dev) + ":" + std::to_string(self.st_ino) + ":" + std::to_string(self.st_size) +
         ":" + std::to_string(self.st_mtim.tv_sec) + "." + std::to_string(self.st_mtim.tv_nsec);
  else
    return {};  // no stable identity for this binary: do not cache
  const scmp_version* v = seccomp_version();
  k += "|libseccomp " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro);
  for (const auto& a : opts.allow_extra) k += "|+" + a;
  for (const auto& d : opts.deny_extra) k += "|-" + d;
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(k)));
  return hex;
}

bool load(const std::string& path, sandbox::SeccompProgram& out) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & 0077) == 0 &&
            st.st_size > 0 && st.st_size % static_cast<off_t>(sizeof(sock_filter)) == 0 &&
            st.st_size <= static_cast<off_t>(BPF_MAXINSNS * sizeof(sock_filter));
  if (ok) {
    out.insns.resize(static_cast<size_t>(st.st_size) / sizeof(sock_filter));
    ok = read(fd, out.insns.data(), static_cast<size_t>(st.st_size)) == st.st_size;
  }
  close(fd);
  return ok;
}

void store(const std::string& dir, const std::string& path, const sandbox::SeccompProgram& prog) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return;
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t bytes = prog.insns.size() * sizeof(sock_filter);
  bool ok = write(fd, prog.insns.data(), bytes) == static_cast<ssize_t>(bytes) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) unlink(tmp.c_str());
}

}  // namespace

Result<sandbox::SeccompProgram> cached_seccomp(const sandbox::SeccompOptions& opts, const std::string& cache_dir) {
  std::string key = cache_key(opts);
  std::string path = cache_dir + "/" + key + ".bpf";
  sandbox::SeccompProgram prog;
  if (!key.empty() && load(path, prog)) return prog;
  auto compiled = sandbox::compile_seccomp(opts);
  if (!compiled) return compiled.error();
  if (!key.empty()) store(cache_dir, path, *compiled);
  return compiled;
}

}  // namespace gh::broker
