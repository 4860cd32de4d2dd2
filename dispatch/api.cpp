#include "dispatch/api.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "protocol/protocol.hpp"
#include "dispatch/queue.hpp"

namespace gh::dispatch {
namespace {

using json = nlohmann::json;
namespace proto = gh::protocol;

constexpr size_t kMaxTokensFileBytes = 1 << 20;
// How often a waiting claim looks for a change in the queue (a data_version
// read): a task submitted while an agent waits is handed out within this.
constexpr auto kClaimPollInterval = std::chrono::milliseconds(5);

HttpResponse error_answer(int status, const std::string& code, const std::string& message) {
  return HttpResponse{status, error_body(code, message), 0};
}

HttpResponse error_with_acked(const std::string& code, const std::string& message, int64_t acked) {
  return HttpResponse{409, json{{"error", code}, {"message", message}, {"acked", acked}}.dump(), 0};
}

HttpResponse internal_error(const std::string& what) {
  // The details go to the server's log, not to the client.
  std::fprintf(stderr, "gatehouse-dispatch: %s\n", what.c_str());
  return HttpResponse{500, error_body("internal", "the control plane could not do that; see its log"), 0};
}

// "Bearer TOKEN" -> TOKEN; "" when absent or malformed.
std::string bearer_token(const std::string& header) {
  constexpr size_t kScheme = 7;  // "Bearer "
  if (header.size() <= kScheme) return "";
  std::string scheme = header.substr(0, kScheme);
  for (char& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (scheme != "bearer ") return "";
  std::string token = header.substr(kScheme);
  return proto::token_problem(token).empty() ? token : "";
}

bool same_hash(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool is_json_content_type(const std::string& value) {
  std::string v;
  for (char ch : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return v == "application/json" || v.rfind("application/json;", 0) == 0;
}

}  // namespace

Result<std::vector<RunnerToken>> load_runner_tokens(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return err("cannot open the runner tokens file " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return err("the runner tokens file " + path + " is not a regular file");
  }
  if (st.st_mode & 077) {
    close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return err("the runner tokens file " + path + " has mode " + mode +
               ": group and others must not read it (chmod 600 " + path + ")");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxTokensFileBytes) {
    close(fd);
    return err("the runner tokens file " + path + " is over 1 MiB");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = read(fd, text.data(), text.size());
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) return err("cannot read the runner tokens file " + path);

  std::vector<RunnerToken> tokens;
  std::set<std::string> names, hashes;
  std::istringstream lines(text);
  std::string line;
  int lineno = 0;
  while (std::getline(lines, line)) {
    ++lineno;
    std::string where = path + ":" + std::to_string(lineno) + ": ";
    std::istringstream words(line);
    std::string name, token, extra;
    if (!(words >> name) || name[0] == '#') continue;
    if (!(words >> token) || (words >> extra))
      return err(where + "expected `NAME TOKEN` (two words separated by a space)");
    if (std::string why = proto::runner_name_problem(name); !why.empty()) return err(where + "the name: " + why);
    // The token is never echoed, not even in an error.
    if (std::string why = proto::token_problem(token); !why.empty())
      return err(where + "the token is not 16 to 256 characters from [A-Za-z0-9._~+/=-]");
    std::string hash = sha256_hex(token);
    if (!names.insert(name).second) return err(where + "the name " + name + " appears twice");
    if (!hashes.insert(hash).second) return err(where + "this token appears twice; give each runner its own");
    tokens.push_back(RunnerToken{name, hash});
  }
  if (tokens.empty()) return err("the runner tokens file " + path + " holds no `NAME TOKEN` line");
  return tokens;
}

HttpResponse Api::handle(const HttpRequest& request) {
  const std::string prefix = proto::kPathPrefix;
  if (request.path.rfind(prefix, 0) != 0)
    return error_answer(404, "not_found", "no such path: this control plane speaks protocol v1 under /api/v1/");
  std::string rest = request.path.substr(prefix.size());
  std::string id, call;
  if (rest == "claim") {
    call = "claim";
  } else if (rest.rfind("tasks/", 0) == 0) {
    std::string tail = rest.substr(6);
    size_t slash = tail.find('/');
    if (slash != std::string::npos) {
      id = tail.substr(0, slash);
      call = tail.substr(slash + 1);
    }
    if (call != "heartbeat" && call != "records" && call != "complete" && call != "release") call.clear();
  }
  if (call.empty()) return error_answer(404, "not_found", "no such call in protocol v1: " + request.path);
  if (request.method != "POST") return error_answer(405, "bad_request", "use POST for " + request.path);
  if (!is_json_content_type(request.content_type))
    return error_answer(400, "bad_request", "Content-Type must be application/json");
  try {
    if (call == "claim") return claim(request);
    return task_call(request, id, call);
  } catch (const std::exception& e) {  // nlohmann or std::bad_alloc: answer, never die
    return internal_error(std::string("handling ") + request.path + ": " + e.what());
  }
}

HttpResponse Api::claim(const HttpRequest& request) {
  std::string token = bearer_token(request.authorization);
  std::string presented = token.empty() ? "" : sha256_hex(token);
  const RunnerToken* match = nullptr;
  for (const RunnerToken& t : options_.runner_tokens)  // no early exit: same time for every entry
    if (same_hash(presented, t.sha256)) match = &t;
  if (!match) return error_answer(401, "unauthorized", "the runner token was refused");

  Result<proto::ClaimRequest> req = proto::decode_claim(request.body);
  if (!req) return error_answer(400, "bad_request", req.error().message);

  Result<Queue> q = Queue::open(options_.db_path, Queue::Mode::Existing);
  if (!q) return internal_error(q.error().message);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(req->wait);
  int64_t seen_version = -1;
  for (;;) {
    // An agent that stopped waiting (it began draining) gets nothing.
    if (request.client_gone && request.client_gone()) return HttpResponse{204, "", 0};
    // Claim first, then again only after some other connection committed
    // (a submit, a release): checked every kClaimPollInterval, cheaply.
    Result<int64_t> version = q->data_version();
    if (!version) return internal_error(version.error().message);
    if (*version == seen_version) {
      if (std::chrono::steady_clock::now() + kClaimPollInterval > deadline) break;
      if (options_.stop && options_.stop->load()) break;
      std::this_thread::sleep_for(kClaimPollInterval);
      continue;
    }
    seen_version = *version;
    Result<std::optional<proto::Task>> task = q->claim(req->runner, match->name);
    if (!task) return internal_error(task.error().message);
    if (task->has_value()) {
      std::fprintf(stderr, "gatehouse-dispatch: task %s claimed by runner %s (token %s)\n", (*task)->id.c_str(),
                   req->runner.c_str(), match->name.c_str());
      HttpResponse answer{200, proto::encode_task_answer(**task), 0};
      answer.undelivered = [db = options_.db_path, id = (*task)->id] {
        Result<Queue> again = Queue::open(db, Queue::Mode::Existing);
        if (Result<bool> r = again ? again->release(id) : Result<bool>(false); r && *r)
          std::fprintf(stderr, "gatehouse-dispatch: task %s: the claim's answer was not delivered; queued again\n", id.c_str());
      };
      return answer;
    }
    if (std::chrono::steady_clock::now() + kClaimPollInterval > deadline) break;
    if (options_.stop && options_.stop->load()) break;
    std::this_thread::sleep_for(kClaimPollInterval);
  }
  return HttpResponse{204, "", 0};
}

HttpResponse Api::task_call(const HttpRequest& request, const std::string& id, const std::string& call) {
  if (!proto::task_id_problem(id).empty()) return error_answer(404, "unknown_task", "no task with that id");
  std::string token = bearer_token(request.authorization);
  if (token.empty()) return error_answer(401, "unauthorized", "a task token is required (Authorization: Bearer)");

  Result<Queue> q = Queue::open(options_.db_path, Queue::Mode::Existing);
  if (!q) return internal_error(q.error().message);
  Result<std::optional<TaskRow>> row = q->find(id);
  if (!row) return internal_error(row.error().message);
  if (!row->has_value()) return error_answer(404, "unknown_task", "no task " + id);
  if (!same_hash(sha256_hex(token), (*row)->token_sha256))
    return error_answer(401, "unauthorized", "the task token was refused for task " + id);
  const std::string gone = "task " + id + " was canceled and is finalised";

  if (call == "heartbeat") {
    Result<std::string> state = proto::decode_heartbeat(request.body);
    if (!state) return error_answer(400, "bad_request", state.error().message);
    Result<HeartbeatResult> r = q->heartbeat(id);
    if (!r) return internal_error(r.error().message);
    switch (r->kind) {
      case HeartbeatResult::Kind::Ok:
        return HttpResponse{200, proto::encode(proto::HeartbeatAnswer{r->cancel, r->acked}), 0};
      case HeartbeatResult::Kind::Gone: return error_answer(410, "task_gone", gone);
    }
  }
  if (call == "records") {
    Result<std::vector<proto::Record>> recs = proto::decode_records(request.body);
    if (!recs) return error_answer(400, "bad_request", recs.error().message);
    Result<RecordsResult> r = q->add_records(id, *recs);
    if (!r) return internal_error(r.error().message);
    switch (r->kind) {
      case RecordsResult::Kind::Acked: return HttpResponse{200, proto::encode_acked(r->acked), 0};
      case RecordsResult::Kind::OutOfOrder:
        return error_with_acked("out_of_order",
                                "records are stored in order: send from seq " + std::to_string(r->acked + 1),
                                r->acked);
      case RecordsResult::Kind::Completed: return error_answer(409, "already_completed", r->message);
      case RecordsResult::Kind::Gone: return error_answer(410, "task_gone", gone);
      case RecordsResult::Kind::Bad: return error_answer(400, "bad_request", r->message);
    }
  }
  if (call == "complete") {
    Result<proto::Completion> c = proto::decode_completion(request.body);
    if (!c) return error_answer(400, "bad_request", c.error().message);
    Result<CompleteResult> r = q->complete(id, *c);
    if (!r) return internal_error(r.error().message);
    switch (r->kind) {
      case CompleteResult::Kind::Stored:
        std::fprintf(stderr, "gatehouse-dispatch: task %s completed: %s\n", id.c_str(), c->outcome.c_str());
        return HttpResponse{200, R"({"ok":true})", 0};
      case CompleteResult::Kind::Same: return HttpResponse{200, R"({"ok":true})", 0};
      case CompleteResult::Kind::MissingRecords:
        return error_with_acked("missing_records",
                                "records after seq " + std::to_string(r->acked) + " are missing; send them first",
                                r->acked);
      case CompleteResult::Kind::Different:
        return error_answer(409, "already_completed", "task " + id + " already has a different completion");
      case CompleteResult::Kind::Gone: return error_answer(410, "task_gone", gone);
      case CompleteResult::Kind::Bad: return error_answer(400, "bad_request", r->message);
    }
  }
  if (call == "release") {
    Result<bool> r = q->release(id);
    if (!r) return internal_error(r.error().message);
    if (!*r)
      return error_answer(409, "not_releasable",
                          "task " + id + " is not running, or already has records or a result: complete it instead");
    std::fprintf(stderr, "gatehouse-dispatch: task %s handed back by its runner; queued again\n", id.c_str());
    return HttpResponse{200, R"({"ok":true})", 0};
  }
  return error_answer(404, "not_found", "no such call in protocol v1: " + request.path);
}

}  // namespace gh::dispatch
