// uid/gid maps, written by the parent (it needs CAP_SETUID/CAP_SETGID in
// the broker's namespace to map a host id that is not its own). Exactly one
// id each way: the job uid inside maps to the pool uid outside. Host root is
// never mapped, so nothing in the job is ever host root and every file the
// host's root owns is "nobody" to the job, out of reach of any capability.
// Root inside (uid 0) is mapped only for plan.root_in_namespace, and then
// to the same single unprivileged pool uid.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

static Status write_proc_file(pid_t pid, const char* name, const std::string& content) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return err("open " + path + ": " + strerror(errno));
  ssize_t n = write(fd, content.data(), content.size());
  int e = errno;
  close(fd);
  if (n != static_cast<ssize_t>(content.size()))
    return err("write " + path + " (\"" + content.substr(0, content.size() - 1) + "\"): " + strerror(e) +
               (e == EPERM ? " (the broker needs CAP_SETUID and CAP_SETGID)" : ""));
  return ok_status();
}

Status write_id_maps(pid_t child, const SandboxPlan& plan) {
  if (plan.host_uid == 0 || plan.host_gid == 0)
    return err("refusing to map host root into a job (the uid pool must not include 0)");
  if ((plan.job_uid == 0 || plan.job_gid == 0) != plan.root_in_namespace)
    return err("job ids " + std::to_string(plan.job_uid) + ":" + std::to_string(plan.job_gid) +
               " do not match root_in_namespace; refusing to build the sandbox");
  // setgroups must be denied before gid_map can be written by a process
  // that is not privileged over the child; we deny it regardless, so the
  // job can never drop a supplementary group to get past a deny-ACL.
  if (auto s = write_proc_file(child, "setgroups", "deny\n"); !s) return s;
  if (auto s = write_proc_file(child, "uid_map",
                               std::to_string(plan.job_uid) + " " + std::to_string(plan.host_uid) + " 1\n");
      !s)
    return s;
  return write_proc_file(child, "gid_map",
                         std::to_string(plan.job_gid) + " " + std::to_string(plan.host_gid) + " 1\n");
}

}  // namespace gh::sandbox
