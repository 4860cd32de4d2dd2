// The broker's side of docker `proxy` (docs/docker.md): it makes the job's
// socket, starts gatehouse-docker-proxy as nobody with only the Docker
// socket's group, writes each refusal the proxy reports to the audit log,
// and at job end stops the proxy, which removes everything the job owns.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/audit.hpp"
#include "common/result.hpp"
#include "policy/profile.hpp"
#include "sandbox/sandbox.hpp"

namespace gh::broker {

// The Docker socket's group, through which docker `direct` (the job) and
// `proxy` (the proxy) reach the daemon: the socket must be a socket, group
// read-write, for a group other than root. `who` starts each error.
Result<gid_t> docker_socket_group(const std::string& socket, const std::string& who);

struct DockerProxyStart {
  const policy::Profile* profile = nullptr;
  std::string job_id;
  std::string working_directory;  // job view: the default (and usual) bind root
  std::string runtime_dir;        // parent of the per-job socket folder: /run/gatehouse-docker
  std::string audit_log;          // refusals are appended here, as they happen
  // Builds the audit record for an event (job_record with the admission).
  std::function<nlohmann::json(const std::string& event)> record;
};

class DockerProxyProcess {
 public:
  // Starts the proxy and adds its socket to `plan` at /var/run/docker.sock.
  // Fails closed: any step that cannot be done is an error, and no job runs.
  static Result<std::unique_ptr<DockerProxyProcess>> start(const DockerProxyStart& s, sandbox::SandboxPlan& plan);

  // SIGTERM, then waits (up to 120 s) while the proxy removes the job's
  // containers, networks, volumes and images; SIGKILL after that. Returns
  // what was left behind, one line each. Idempotent.
  std::vector<std::string> stop();
  ~DockerProxyProcess();

  DockerProxyProcess(const DockerProxyProcess&) = delete;
  DockerProxyProcess& operator=(const DockerProxyProcess&) = delete;

 private:
  DockerProxyProcess() = default;
  static void drain(int fd, AuditLog audit, const std::function<nlohmann::json(const std::string&)>& record, int report);

  pid_t pid_ = -1;
  std::string dir_;
  pid_t drainer_pid_ = -1;  // the process that audits the proxy's refusals
  int result_fd_ = -1;       // its cleanup report
  std::vector<std::string> left_;
  bool stopped_ = false;
};

}  // namespace gh::broker
