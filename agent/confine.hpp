// The agent's own confinement, applied by itself once its configuration
// and token are read and before the first byte from the network or the
// broker: the process that parses the control plane's answers and the
// HTTP requests of local clients must not be worth taking over.
//
//   - no capabilities (checked) and no_new_privs;
//   - Landlock (where the kernel has it): read-only access to the system's
//     libraries and to the few files in /etc that TLS and name resolution
//     read, the config file and the CA/client certificate files it names;
//     read-write access to its spool, its log file and the folder of its
//     metrics socket; nothing else (not /etc/gatehouse's other files, not
//     the job folders, not the secrets);
//   - a seccomp allowlist (agent/confine.cpp): files, memory, threads,
//     time, sockets (unix, IPv4, IPv6, netlink for the resolver), polling;
//     never exec, ptrace, mount, namespaces, id changes, module or kernel
//     keyring calls. Anything else fails with EPERM.
#pragma once

#include <string>

#include "agent/config.hpp"
#include "common/result.hpp"

namespace gh::agent {

Status confine_agent(const AgentConfig& config, const std::string& config_path);

}  // namespace gh::agent
