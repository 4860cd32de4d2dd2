// `gatehouse-dispatch init DIR`: one directory holding everything a first
// control plane and its agent need, made to match each other (docs/dispatch.md,
// "Setting up a site"): a CA, a server certificate it signed, a runner token
// in both the dispatch's and the agent's form, the agent's configuration, a
// policy and a first job. The keys and certificates are made with OpenSSL's
// API here; nothing is shelled out.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace gh::dispatch {

// The files init writes, by name inside DIR.
inline constexpr const char* kInitCaKey = "ca.key";
inline constexpr const char* kInitCaCert = "ca.pem";
inline constexpr const char* kInitServerKey = "server.key";
inline constexpr const char* kInitServerCert = "server.pem";
inline constexpr const char* kInitRunnerTokens = "runner-tokens";
inline constexpr const char* kInitAgentToken = "token";
inline constexpr const char* kInitAgentConfig = "gatehouse.yaml";
inline constexpr const char* kInitPolicy = "policy.yaml";
inline constexpr const char* kInitJob = "hello.yml";
// Made later, by the dispatch and by `gatehouse serve`.
inline constexpr const char* kInitQueue = "queue.db";
inline constexpr const char* kInitSpool = "spool";
// The agent's default work root (docs/agent.md): jobs' workspaces, which
// must be a nosuid,nodev mount, so it is not put inside DIR.
inline constexpr const char* kInitWorkRoot = "/var/lib/gatehouse/work";
inline constexpr int kInitDefaultPort = 8443;
inline constexpr int kInitCaDays = 3650;
inline constexpr int kInitServerDays = 825;

struct InitOptions {
  std::string dir;
  std::vector<std::string> names;      // DNS names for the certificate; the first is the agent's URL host
  std::vector<std::string> addresses;  // IP addresses for the certificate; the first is where the dispatch listens
  std::string runner;                  // "" for this host's name (runner-1 when that is not a valid runner name)
  std::string resource_class = "local/linux";
  int port = kInitDefaultPort;
  bool force = false;
};

struct InitResult {
  std::string dir;  // absolute, symlinks resolved
  std::vector<std::string> names, addresses;
  std::string runner, resource_class;
  std::string listen, url;
  std::string ca_not_after, server_not_after;  // YYYY-MM-DD, UTC
  std::vector<std::string> kept;               // entries of DIR left alone (--force)
  std::vector<std::string> commands;           // start the dispatch, start the agent, submit
  std::vector<std::string> before;             // what this host still lacks for those, each with its fix
};

// "" when `name` is a DNS host name a certificate can carry (no wildcard,
// no IP address), else why not.
std::string dns_name_problem(const std::string& name);
// The canonical text of an IPv4 or IPv6 address, or why `text` is not one.
Result<std::string> canonical_ip(const std::string& text);

// Checks the options, then makes DIR and writes the files. Refuses a DIR
// that is not empty unless o.force; the error lists what is there.
Result<InitResult> init_site(const InitOptions& o);

// The command: init_site, then what was made and the next commands on
// stdout. Exit status 0, or 2 with the error on stderr.
int cmd_init(const InitOptions& o);

}  // namespace gh::dispatch
