#include "broker/privileges.hpp"

#include <grp.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace gh::broker {

namespace {

bool has_cgroup2() {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return true;
  return false;
}

// What each capability is for, as the refusal to start says it.
const char* cap_use(int cap) {
  switch (cap) {
    case CAP_CHOWN: return "CAP_CHOWN (to hand each job's folders to its uid)";
    case CAP_FOWNER: return "CAP_FOWNER (to take a job's files back when it ends)";
    case CAP_SETUID: return "CAP_SETUID (to write each job's uid_map for a pool uid)";
    case CAP_SETGID: return "CAP_SETGID (to write each job's gid_map)";
    case CAP_KILL: return "CAP_KILL (to end a job by signals: this host has no cgroup v2 for cgroup.kill)";
    default: return "a capability";
  }
}

}  // namespace

uint64_t broker_capabilities() {
  uint64_t m = (uint64_t{1} << CAP_SETUID) | (uint64_t{1} << CAP_SETGID) | (uint64_t{1} << CAP_CHOWN) |
               (uint64_t{1} << CAP_FOWNER);
  if (!has_cgroup2()) m |= uint64_t{1} << CAP_KILL;
  return m;
}

Status drop_to_broker_privileges() {
  if (geteuid() != 0 || getuid() != 0)
    return err("the broker must run as root (it maps a host uid for each job and builds its sandbox)");
  const uint64_t keep = broker_capabilities();
  // With setgroups denied in the job's namespace, a group the broker held
  // would become the job's for good.
  if (setgroups(0, nullptr) != 0) return err(std::string("cannot drop supplementary groups: ") + strerror(errno));

  // Bounding set first, while CAP_SETPCAP is still there: it caps what any
  // exec of ours can ever hold again.
  for (int cap = 0; cap <= 63; ++cap) {
    int in_bounding = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in_bounding < 0) break;  // past the kernel's last capability
    if (in_bounding == 0 || ((keep >> cap) & 1)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
      return err("cannot drop capability " + std::to_string(cap) + " from the bounding set (" + strerror(errno) +
                 "): start the broker as root with CAP_SETPCAP, or with a bounding set of only what it needs");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    return err(std::string("cannot clear the ambient capabilities: ") + strerror(errno));

  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return err(std::string("capget: ") + strerror(errno));
  const uint64_t had = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  for (int cap : {CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_FOWNER, CAP_KILL})
    if (((keep >> cap) & 1) && !((had >> cap) & 1))
      return err(std::string("the broker needs ") + cap_use(cap) + " and was started without it");
  for (int i = 0; i < 2; ++i) {
    data[i].permitted = data[i].effective = static_cast<uint32_t>(keep >> (32 * i));
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) return err(std::string("capset: ") + strerror(errno));
  // No exec of ours may gain anything through a setuid file or file caps.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return err(std::string("no_new_privs: ") + strerror(errno));

  // Read back: exactly `keep`, everywhere.
  if (syscall(SYS_capget, &hdr, data) != 0) return err(std::string("capget: ") + strerror(errno));
  const uint64_t eff = data[0].effective | (uint64_t{data[1].effective} << 32);
  const uint64_t prm = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  const uint64_t inh = data[0].inheritable | (uint64_t{data[1].inheritable} << 32);
  if (eff != keep || prm != keep || inh != 0) return err("the capability sets did not come out as asked");
  for (int cap = 0; cap <= 63; ++cap) {
    int b = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (b < 0) break;
    if (b != 0 && !((keep >> cap) & 1)) return err("the bounding set did not come out as asked");
  }
  return ok_status();
}

Status signal_as(uid_t uid, gid_t gid, pid_t pid, int sig) {
  if (pid == 0 || pid == -1) return err("no such process");  // never "every process" or "our group"
  if (kill(pid, sig) == 0) return ok_status();  // same uid, or CAP_KILL after all
  pid_t k = fork();
  if (k < 0) return err(std::string("fork: ") + strerror(errno));
  if (k == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(126);
    _exit(kill(pid, sig) == 0 ? 0 : 1);
  }
  int status = 0;
  while (waitpid(k, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return err("cannot signal process " + std::to_string(pid) + " as uid " + std::to_string(uid));
  return ok_status();
}

}  // namespace gh::broker
