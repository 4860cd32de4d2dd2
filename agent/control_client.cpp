// The HTTPS client to the control plane. Every call is one POST through
// post(), which sets every transfer option afresh (curl_easy_reset keeps
// the connection and TLS session caches, not a previous call's options),
// and one mapping from what happened to a value or a CallError.
#include "agent/control_client.hpp"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <mutex>

#include "common/yaml_util.hpp"

namespace gh::agent {

namespace {

constexpr const char* kUserAgent = "gatehouse/0.1.0";
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr int kMaxRetryAfter = 300;

// libcurl is told not to touch signals (the agent is multithreaded), so a
// TLS write to a peer that hung up would raise SIGPIPE. Ignoring SIGPIPE
// process-wide would leak into every job (ignored signals survive execve),
// so it is blocked in this thread for the call and a pending one consumed.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

struct Exchange {
  CURLcode rc = CURLE_OK;
  long status = 0;
  std::string body;
  bool body_too_big = false;
  size_t header_bytes = 0;
  int retry_after = 0;
  std::string location;
  char errbuf[CURL_ERROR_SIZE] = {};
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t len = size * n;
  if (len > protocol::kMaxResponseBytes - ex->body.size()) {
    ex->body_too_big = true;
    return 0;  // aborts the transfer
  }
  ex->body.append(data, len);
  return len;
}

bool header_is(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

std::string header_value(std::string_view line, size_t name_len) {
  std::string_view v = line.substr(name_len + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  return std::string(v);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t len = size * n;
  ex->header_bytes += len;
  if (ex->header_bytes > kMaxHeaderBytes) return 0;
  const std::string_view line(data, len);
  if (header_is(line, "retry-after")) {
    // Seconds only: an HTTP date needs a clock we need not trust.
    const std::string v = header_value(line, 11);
    if (!v.empty() && v.size() <= 6 && v.find_first_not_of("0123456789") == std::string::npos)
      ex->retry_after = std::min(std::stoi(v), kMaxRetryAfter);
  } else if (header_is(line, "location")) {
    ex->location = yaml::printable(header_value(line, 8).substr(0, 200));
  }
  return len;
}

CallError request_error(std::string message) {
  CallError e;
  e.kind = CallError::Kind::Request;
  e.message = std::move(message);
  return e;
}

CallError malformed(const Exchange& ex, const std::string& call, const std::string& why) {
  CallError e;
  e.kind = CallError::Kind::Malformed;
  e.status = static_cast<int>(ex.status);
  e.message = "the control plane's answer to " + call + " is malformed: " + why;
  return e;
}

std::string curl_detail(const Exchange& ex) {
  std::string d = ex.errbuf[0] ? std::string(ex.errbuf) : std::string(curl_easy_strerror(ex.rc));
  return yaml::printable(d.substr(0, 300));
}

CallError transport_error(const Exchange& ex, const std::string& call, const std::string& url) {
  CallError e;
  e.kind = CallError::Kind::Network;
  e.status = static_cast<int>(ex.status);
  const std::string what = call + " to " + url + ": ";
  const CURLcode rc = ex.rc;
  e.interrupted = rc == CURLE_ABORTED_BY_CALLBACK;
  if (e.interrupted)
    e.message = what + "interrupted by the agent (a signal or a drain)";
  else if (rc == CURLE_OPERATION_TIMEDOUT)
    e.message = what + "no answer within the time limit (the control plane stalled or is too slow): " + curl_detail(ex);
  else if (rc == CURLE_PEER_FAILED_VERIFICATION)
    e.message = what + "the control plane's TLS certificate is not trusted (" + curl_detail(ex) +
                "): check api.ca_file and that api.url names the host the certificate is for";
  else if (rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
    e.message = what + "the control plane's public key does not match api.pinned_public_key (" + curl_detail(ex) +
                "): check the pin, or whether someone is in between";
  else if (rc == CURLE_SSL_CACERT_BADFILE)
    e.message = what + "api.ca_file cannot be used: " + curl_detail(ex);
  else if (rc == CURLE_SSL_CERTPROBLEM)
    e.message = what + "api.client_cert or api.client_key cannot be used: " + curl_detail(ex);
  else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT)
    e.message = what + "cannot connect: " + curl_detail(ex);
  else
    e.message = what + curl_detail(ex);
  return e;
}

CallError http_error(const Exchange& ex, const std::string& call, bool runner_token) {
  CallError e;
  e.kind = CallError::Kind::Http;
  e.status = static_cast<int>(ex.status);
  std::string server_says;
  if (!ex.body.empty()) {
    auto a = protocol::decode_error(ex.body);
    if (a) {
      e.code = a->error;
      e.acked = a->acked;
      if (!a->message.empty()) server_says = ": " + yaml::printable(a->message.substr(0, 300));
    } else {
      server_says = " (its error body is not readable: " + a.error().message + ")";
    }
  }
  if (ex.status == 429 || ex.status == 503) e.retry_after = ex.retry_after;
  std::string hint;
  switch (ex.status) {
    case 400: hint = "a bug on one side; the call is dropped"; break;
    case 401: hint = runner_token ? "the runner token was refused: check api.auth_token_file" : "the task token was refused"; break;
    case 404:
      hint = e.code == "unknown_task" ? "the control plane does not know this task"
                                      : "the control plane does not speak protocol v1: check api.url";
      break;
    case 409:
      if (e.code == "out_of_order" || e.code == "missing_records")
        hint = "the control plane has records through " + std::to_string(e.acked);
      else if (e.code == "already_completed")
        hint = "a different result was stored first";
      break;
    case 410: hint = "the task was canceled and finalised"; break;
    case 413: hint = "the request is too large for the control plane"; break;
    case 429:
    case 503:
      hint = "the control plane is busy" +
             (e.retry_after > 0 ? "; retry after " + std::to_string(e.retry_after) + "s" : std::string());
      break;
    default:
      if (ex.status >= 300 && ex.status < 400)
        hint = "a redirect" + (ex.location.empty() ? std::string() : " to " + ex.location) +
               ", which the agent does not follow: set api.url to the control plane's address";
      break;
  }
  e.message = call + ": the control plane answered " + std::to_string(ex.status) +
              (e.code.empty() ? "" : " " + e.code) + server_says + (hint.empty() ? "" : " (" + hint + ")");
  return e;
}

std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_OK;

}  // namespace

bool CallError::retryable() const {
  switch (kind) {
    case Kind::Network:
    case Kind::Malformed: return true;
    case Kind::Request: return false;
    case Kind::Http: break;
  }
  if (status == 429 || status >= 500) return true;
  if (status == 404) return code != "unknown_task";
  if (status == 409) return code == "out_of_order" || code == "missing_records";
  return false;
}

struct ControlClient::Impl {
  CURL* curl = nullptr;
  // Every call runs on this multi handle so another thread can wake it
  // (interrupt()): a claim's long poll must not hold up a drain or a
  // signal for its whole wait. The multi handle keeps the connection
  // between calls, as the easy handle alone would.
  CURLM* multi = nullptr;
  std::atomic<bool> interrupted{false};
  ApiConfig api;
  std::string runner_token;
  ClientOptions options;
  ~Impl() {
    if (curl) curl_easy_cleanup(curl);
    if (multi) curl_multi_cleanup(multi);
  }

  // curl_easy_perform, but for an `interruptible` call woken by
  // interrupt(): checked each time the multi handle's poll returns (a
  // wakeup, socket activity, or 1 s).
  CURLcode perform(bool interruptible) {
    if (curl_multi_add_handle(multi, curl) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode rc = CURLE_OK;
    for (;;) {
      int running = 0;
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        rc = CURLE_FAILED_INIT;
        break;
      }
      if (running == 0) {
        int left = 0;
        CURLMsg* m = curl_multi_info_read(multi, &left);
        rc = m && m->msg == CURLMSG_DONE ? m->data.result : CURLE_FAILED_INIT;
        break;
      }
      if (interruptible && interrupted.exchange(false)) {
        rc = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      if (curl_multi_poll(multi, nullptr, 0, 1000, nullptr) != CURLM_OK) {
        rc = CURLE_FAILED_INIT;
        break;
      }
    }
    curl_multi_remove_handle(multi, curl);
    return rc;
  }

  // One POST. `stall_s`: how long under 1 byte/s is tolerated.
  Exchange post(const std::string& path, const std::string& token, const std::string& body,
                std::chrono::milliseconds total, long stall_s, bool interruptible) {
    Exchange ex;
    curl_easy_reset(curl);
    const std::string url = api.url + protocol::kPathPrefix + path;
    curl_slist* headers = nullptr;
    const std::string auth = "Authorization: Bearer " + token;
    for (const char* h : {"Content-Type: application/json", "Accept: application/json", "Expect:"})
      headers = curl_slist_append(headers, h);
    headers = curl_slist_append(headers, auth.c_str());
    auto set = [&](CURLoption o, auto v) {
      if (ex.rc == CURLE_OK) ex.rc = curl_easy_setopt(curl, o, v);
    };
    set(CURLOPT_ERRORBUFFER, ex.errbuf);
    set(CURLOPT_URL, url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_SSL_VERIFYPEER, 1L);
    set(CURLOPT_SSL_VERIFYHOST, 2L);
    set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    if (!api.ca_file.empty()) set(CURLOPT_CAINFO, api.ca_file.c_str());
    if (!api.client_cert.empty()) {
      set(CURLOPT_SSLCERT, api.client_cert.c_str());
      set(CURLOPT_SSLKEY, api.client_key.c_str());
    }
    if (!api.pinned_public_key.empty()) set(CURLOPT_PINNEDPUBLICKEY, api.pinned_public_key.c_str());
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
    set(CURLOPT_LOW_SPEED_LIMIT, 1L);
    set(CURLOPT_LOW_SPEED_TIME, stall_s);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_USERAGENT, kUserAgent);
    set(CURLOPT_HTTPHEADER, headers);
    set(CURLOPT_POST, 1L);
    set(CURLOPT_POSTFIELDS, body.data());
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(protocol::kMaxResponseBytes));
    set(CURLOPT_WRITEFUNCTION, on_body);
    set(CURLOPT_WRITEDATA, &ex);
    set(CURLOPT_HEADERFUNCTION, on_header);
    set(CURLOPT_HEADERDATA, &ex);
    if (ex.rc == CURLE_OK) {
      SigpipeBlock quiet;
      ex.rc = interruptible && interrupted.exchange(false) ? CURLE_ABORTED_BY_CALLBACK : perform(interruptible);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ex.status);
    curl_slist_free_all(headers);
    // The handle keeps pointers to this call's buffers until the next reset.
    curl_easy_reset(curl);
    return ex;
  }

  // The shared part of every call: checks, the POST, and everything that
  // is not a 2xx answer. On a 2xx, `ex` holds it and nullopt is returned.
  std::optional<CallError> call(const std::string& name, const std::string& path, const std::string& token,
                                bool with_runner_token, const std::string& body, std::chrono::milliseconds total,
                                long stall_s, Exchange& ex, bool interruptible = false) {
    if (body.size() > protocol::kMaxRequestBytes) {
      CallError e = request_error(name + ": the request is " + std::to_string(body.size()) +
                                  " bytes, over the protocol's 1 MiB bound (send fewer records per call)");
      e.code = "too_large";  // the caller splits, as for the server's 413
      return e;
    }
    ex = post(path, token, body, total, stall_s, interruptible);
    if (ex.body_too_big || ex.rc == CURLE_FILESIZE_EXCEEDED) {
      CallError e = malformed(ex, name, "the control plane's answer exceeded 4 MiB");
      return e;
    }
    if (ex.rc != CURLE_OK) return transport_error(ex, name, api.url);
    if (ex.status < 200 || ex.status > 299) return http_error(ex, name, with_runner_token);
    return std::nullopt;
  }

  std::optional<CallError> task_call(const std::string& name, const std::string& task_id, const std::string& token,
                                     const std::string& verb, const std::string& body, Exchange& ex) {
    if (std::string why = protocol::task_id_problem(task_id); !why.empty())
      return request_error(name + ": the task id " + why);
    if (std::string why = protocol::token_problem(token); !why.empty())
      return request_error(name + " of task " + task_id + ": the task token " + why);
    return call(name + " of task " + task_id, "tasks/" + task_id + "/" + verb, token, false, body,
                options.call_timeout, static_cast<long>(options.stall_timeout.count()), ex);
  }
};

ControlClient::ControlClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void ControlClient::interrupt() {
  impl_->interrupted = true;
  curl_multi_wakeup(impl_->multi);
}
ControlClient::ControlClient(ControlClient&&) noexcept = default;
ControlClient& ControlClient::operator=(ControlClient&&) noexcept = default;
ControlClient::~ControlClient() = default;

Result<ControlClient> ControlClient::create(const AgentConfig& config, std::string runner_token, ClientOptions options) {
  std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (g_curl_init != CURLE_OK)
    return err(std::string("cannot initialise libcurl: ") + curl_easy_strerror(g_curl_init));
  if (std::string why = api_url_problem(config.api.url); !why.empty()) return err("api.url " + why);
  if (std::string why = protocol::token_problem(runner_token); !why.empty()) return err("the runner token " + why);
  if (!config.api.pinned_public_key.empty())
    if (std::string why = pinned_key_problem(config.api.pinned_public_key); !why.empty())
      return err("api.pinned_public_key " + why);
  if (config.api.client_cert.empty() != config.api.client_key.empty())
    return err("api.client_cert and api.client_key go together: set both or neither");
  for (const auto& [key, file] : {std::pair{"api.ca_file", &config.api.ca_file},
                                  std::pair{"api.client_cert", &config.api.client_cert},
                                  std::pair{"api.client_key", &config.api.client_key}})
    if (!file->empty() && access(file->c_str(), R_OK) != 0)
      return err(std::string(key) + " " + *file + " cannot be read: " + strerror(errno));
  auto impl = std::make_unique<Impl>();
  impl->curl = curl_easy_init();
  impl->multi = curl_multi_init();
  if (!impl->curl || !impl->multi) return err("cannot create a libcurl handle (out of memory?)");
  impl->api = config.api;
  impl->runner_token = std::move(runner_token);
  impl->options = options;
  return ControlClient(std::move(impl));
}

Reply<std::optional<protocol::Task>> ControlClient::claim(const protocol::ClaimRequest& request) {
  const int wait = std::clamp(request.wait, 0, protocol::kMaxClaimWaitSeconds);
  Exchange ex;
  if (auto e = impl_->call("claim", "claim", impl_->runner_token, true, protocol::encode(request),
                           impl_->options.call_timeout + std::chrono::seconds(wait),
                           static_cast<long>(impl_->options.stall_timeout.count()) + wait, ex, true))
    return *e;
  if (ex.status == 204) return std::optional<protocol::Task>();
  if (ex.status != 200) return malformed(ex, "claim", "status " + std::to_string(ex.status) + " is not 200 or 204");
  auto task = protocol::decode_task_answer(ex.body);
  if (!task) {
    CallError e = malformed(ex, "claim", "the task is refused: " + task.error().message);
    e.unreadable_task = protocol::decode_task_identity(ex.body);
    return e;
  }
  return std::optional<protocol::Task>(std::move(*task));
}

Reply<protocol::HeartbeatAnswer> ControlClient::heartbeat(const std::string& task_id, const std::string& task_token,
                                                          const std::string& state) {
  Exchange ex;
  if (auto e = impl_->task_call("heartbeat", task_id, task_token, "heartbeat", protocol::encode_heartbeat(state), ex))
    return *e;
  if (ex.status != 200) return malformed(ex, "heartbeat", "status " + std::to_string(ex.status) + " is not 200");
  auto a = protocol::decode_heartbeat_answer(ex.body);
  if (!a) return malformed(ex, "heartbeat", a.error().message);
  return *a;
}

Reply<int64_t> ControlClient::send_records(const std::string& task_id, const std::string& task_token,
                                           const std::vector<protocol::Record>& records) {
  if (records.size() > protocol::kMaxRecordsPerBatch)
    return request_error("records of task " + task_id + ": " + std::to_string(records.size()) +
                         " records in one call, over the protocol's " + std::to_string(protocol::kMaxRecordsPerBatch));
  Exchange ex;
  if (auto e = impl_->task_call("records", task_id, task_token, "records", protocol::encode_records(records), ex))
    return *e;
  if (ex.status != 200) return malformed(ex, "records", "status " + std::to_string(ex.status) + " is not 200");
  auto a = protocol::decode_acked(ex.body);
  if (!a) return malformed(ex, "records", a.error().message);
  return *a;
}

Reply<Ok> ControlClient::complete(const std::string& task_id, const std::string& task_token,
                                  const protocol::Completion& completion) {
  Exchange ex;
  if (auto e = impl_->task_call("complete", task_id, task_token, "complete", protocol::encode(completion), ex))
    return *e;
  if (ex.status != 200) return malformed(ex, "complete", "status " + std::to_string(ex.status) + " is not 200");
  if (auto s = protocol::decode_ok(ex.body); !s) return malformed(ex, "complete", s.error().message);
  return Ok{};
}

Reply<Ok> ControlClient::release(const std::string& task_id, const std::string& task_token) {
  Exchange ex;
  if (auto e = impl_->task_call("release", task_id, task_token, "release", "{}", ex)) return *e;
  if (ex.status != 200) return malformed(ex, "release", "status " + std::to_string(ex.status) + " is not 200");
  if (auto s = protocol::decode_ok(ex.body); !s) return malformed(ex, "release", s.error().message);
  return Ok{};
}

std::chrono::milliseconds backoff_delay(int attempt, std::mt19937_64& rng) {
  const int doublings = std::clamp(attempt, 0, 6);
  const int64_t base_ms = std::min<int64_t>(int64_t{1000} << doublings, 60'000);
  std::uniform_real_distribution<double> factor(0.5, 1.5);
  return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(base_ms) * factor(rng)));
}

}  // namespace gh::agent
