// The protocol handlers of gatehouse-dispatch (docs/protocol.md, version 1):
// routes a parsed HTTP request to claim / heartbeat / records / complete,
// checks the bearer token, decodes the body strictly and answers with the
// statuses and bodies of the protocol's table.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "dispatch/https_server.hpp"

namespace gh::dispatch {

struct RunnerToken {
  std::string name;
  std::string sha256;  // of the token; the token itself is not kept
};

// The runner tokens file: one `NAME TOKEN` a line; blank lines and lines
// starting with '#' are skipped. Refused when group or others may read it.
Result<std::vector<RunnerToken>> load_runner_tokens(const std::string& path);

struct ApiOptions {
  std::string db_path;
  std::vector<RunnerToken> runner_tokens;
  const std::atomic<bool>* stop = nullptr;  // ends claim long polls early
};

class Api {
 public:
  explicit Api(ApiOptions options) : options_(std::move(options)) {}
  HttpResponse handle(const HttpRequest& request);

 private:
  HttpResponse claim(const HttpRequest& request);
  HttpResponse task_call(const HttpRequest& request, const std::string& id, const std::string& call);

  ApiOptions options_;
};

}  // namespace gh::dispatch
