// The proxy's endpoint table: for each request the job may make, what is
// checked and how it is rewritten before it goes to the daemon; every
// other request is refused. docs/docker.md lists the same table for
// operators. The router reads the request's body itself (it knows which
// endpoints carry JSON, which carry a stream, and which carry nothing).
#pragma once

#include <cstdint>
#include <string>

#include "common/unique_fd.hpp"
#include "docker/http_message.hpp"
#include "docker/ownership.hpp"
#include "docker/proxy.hpp"

namespace gh::docker {

struct Limits {
  uint64_t json_body = 1u << 20;          // create, exec, network, volume bodies
  uint64_t build_context = 2ull << 30;    // POST /build, held in memory (memfd) to read the Dockerfile
  uint64_t archive_upload = 2ull << 30;   // PUT /containers/{id}/archive, streamed through
};

// What to send upstream. The request head's target has been rewritten in
// place (full ids, owner filters, canonical query).
struct Forward {
  enum class Body { None, Bytes, File, Stream };
  Body body = Body::None;
  std::string bytes;       // Bytes: the checked, canonical body
  UniqueFd file = UniqueFd(-1);  // File: a memfd holding the whole body (build context)
  uint64_t file_size = 0;
  uint64_t stream_limit = 0;  // Stream: the job's body, de-chunked and re-chunked, at most this
  // attach and exec start: the daemon may turn the connection into a raw
  // stream (101 or a raw-stream content type); only these may.
  bool may_hijack = false;
  // container create: the answer's Id is the job's (OwnedIds), so the
  // requests that follow on it need no inspect.
  bool remember_created = false;
};

Checked<Forward> route(RequestHead& head, RequestReader& reader, JobObjects& objects, const JobRules& rules,
                       const Limits& limits);

}  // namespace gh::docker
