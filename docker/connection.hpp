// One job connection: read one request, route it, forward it on a fresh
// daemon connection, relay the answer, close. A connection becomes an
// opaque two-way stream only after the daemon answered an attach or exec
// start (or, with BuildKit allowed, a session) with an upgrade or a raw
// stream; until then every byte the job sent was parsed and checked.
#pragma once

#include <functional>
#include <string>

#include "docker/ownership.hpp"
#include "docker/router.hpp"
#include "docker/upstream.hpp"

namespace gh::docker {

struct ProxyContext {
  const Upstream& upstream;
  const JobRules& rules;
  Limits limits;
  // Called for every refusal (the audit record): rule, status, "METHOD /path", message.
  std::function<void(const Refusal&, const std::string& request)> refused;
  // Called with each socket the connection opens or closes, so a stopping
  // proxy can shut every stream down.
  std::function<void(int fd, bool open)> track;
  OwnedIds* known = nullptr;  // shared by every connection of this proxy
};

void serve_connection(int client_fd, const ProxyContext& ctx);

}  // namespace gh::docker
