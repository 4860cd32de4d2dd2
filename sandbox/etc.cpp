// /etc for the job: built from an allowlist, never a copy of the host's.
// What a build needs to run programs (the dynamic linker's cache, TLS
// roots, alternatives links, name-service switch, time zone) is bound
// read-only; identity files are generated. Everything else, in particular
// shadow, gshadow, sudoers, SSH host keys, TLS private keys and
// /etc/gatehouse (the agent's configuration and credentials), is simply
// absent: an allowlist cannot forget to hide a new secret.
// With filesystem.root `overlay` the job's /etc is a writable tmpfs of its
// own and the allowlisted directories become overlays (sandbox/overlay.cpp):
// the same names, still nothing else of the host's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <string>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

// Entries under /etc a job may see (files or directories), read-only.
static constexpr std::array kEtcAllowlist = {
    "alternatives", "bash.bashrc", "ca-certificates", "ca-certificates.conf", "debian_version",
    "environment", "fonts", "gai.conf", "host.conf", "inputrc", "java-17-openjdk", "ld.so.cache",
    "ld.so.conf", "ld.so.conf.d", "locale.alias", "localtime", "lsb-release", "magic", "mime.types",
    "os-release", "perl", "profile", "profile.d", "protocols", "python3", "python3.11", "rpc", "services",
    "shells", "ssl/certs", "ssl/openssl.cnf", "terminfo", "timezone", "xdg", "gitconfig", "mailcap",
    "nsswitch.conf", "mke2fs.conf", "dpkg", "apt", "debconf.conf", "login.defs", "subversion", "vim",
    "wgetrc", "zsh", "bindresvport.blacklist", "libaudit.conf", "networks", "ethertypes",
};

constexpr off_t kMaxCopiedEtcFile = 1 << 20;

static std::optional<std::string> read_small_file(const std::string& path, size_t size) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, out.data() + got, size - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got != size) return std::nullopt;  // changed under us: bind it instead
  return out;
}

// Overlay mode: package managers resolve the system's user and group names
// (dpkg refuses to run when a statoverride names an unknown group). The
// host's system accounts (ids 1-999) come along with only name, ids, home
// and shell: no password field, no comment, no group members (which would
// name people). Their ids are unmapped in the job: the names resolve, the
// ids grant nothing. Human accounts (1000 and up) stay out, and so does
// _apt (below).
static std::string system_accounts(const char* path, size_t nfields) {
  struct stat st {};
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxCopiedEtcFile) return "";
  auto text = read_small_file(path, static_cast<size_t>(st.st_size));
  if (!text) return "";
  std::string out;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(pos, end - pos);
    pos = end + 1;
    std::array<std::string, 7> f;
    size_t n = 0, start = 0;
    for (; n < f.size(); ++n) {
      size_t colon = line.find(':', start);
      f[n] = line.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (n + 1 != nfields || f[0].empty() || f[2].empty() || f[2].size() > 3) continue;
    if (f[2].find_first_not_of("0123456789") != std::string::npos || f[2] == "0") continue;
    if (f[0].find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-.") != std::string::npos) continue;
    // apt switches to _apt for downloads when the account exists; its uid
    // is unmapped here, so apt must find no such user and stay root.
    if (f[0] == "_apt") continue;
    if (nfields == 7) {
      if (f[3].empty() || f[3].find_first_not_of("0123456789") != std::string::npos) continue;
      out += f[0] + ":x:" + f[2] + ":" + f[3] + "::" + f[5] + ":" + f[6] + "\n";
    } else {
      out += f[0] + ":x:" + f[2] + ":\n";
    }
  }
  return out;
}

const char* const* etc_allowlist_begin() { return kEtcAllowlist.data(); }
size_t etc_allowlist_size() { return kEtcAllowlist.size(); }

void plan_etc(SandboxPlan& plan, const EtcIdentity& who) {
  for (const char* name : kEtcAllowlist) {
    std::string host = std::string("/etc/") + name;
    struct stat st {};
    if (lstat(host.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      // Keep links as links (os-release -> ../usr/lib/os-release): they
      // resolve inside the job's view, never to a host path we did not bind.
      char buf[4096];
      ssize_t n = readlink(host.c_str(), buf, sizeof buf - 1);
      if (n <= 0) continue;
      plan.links.emplace_back(host, std::string(buf, static_cast<size_t>(n)));
      continue;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
    // Small world-readable files are copied into the job's /etc (a
    // snapshot, written by the child): two mount calls fewer each, which
    // is most of the root's build time. Anything else keeps a read-only
    // bind, so its host permissions still apply.
    if (S_ISREG(st.st_mode) && (st.st_mode & S_IROTH) && st.st_size <= kMaxCopiedEtcFile) {
      if (auto content = read_small_file(host, static_cast<size_t>(st.st_size))) {
        plan.etc_files.push_back({name, std::move(*content)});
        continue;
      }
    }
    plan.binds.push_back({host, host, false, S_ISDIR(st.st_mode)});
  }
  const std::string u = std::to_string(who.uid), g = std::to_string(who.gid);
  const std::string sys_users = plan.overlay_root ? system_accounts("/etc/passwd", 7) : "";
  const std::string sys_groups = plan.overlay_root ? system_accounts("/etc/group", 4) : "";
  if (who.uid == 0) {
    // root_in_namespace: the job is root, with the profile's home.
    plan.etc_files.push_back({"passwd", "root:x:0:0:root:" + who.home + ":" + who.shell + "\n" + sys_users +
                                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"});
    plan.etc_files.push_back({"group", "root:x:0:\n" + sys_groups + "nogroup:x:65534:\n"});
  } else {
    plan.etc_files.push_back({"passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n" + who.user + ":x:" + u + ":" +
                                            g + "::" + who.home + ":" + who.shell + "\n" + sys_users +
                                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"});
    plan.etc_files.push_back({"group", "root:x:0:\n" + who.user + ":x:" + g + ":\n" + sys_groups + "nogroup:x:65534:\n"});
  }
  plan.etc_files.push_back({"hostname", who.hostname + "\n"});
  plan.etc_files.push_back({"hosts", "127.0.0.1\tlocalhost " + who.hostname + "\n::1\tlocalhost ip6-localhost\n"});
  plan.etc_files.push_back({"resolv.conf", "# this job has no network\n"});
}

}  // namespace gh::sandbox
