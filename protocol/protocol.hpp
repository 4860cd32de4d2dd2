// The control-plane protocol, version 1 (docs/protocol.md): the messages
// both sides exchange, their limits, and strict decoders. The agent
// (broker/serve) and the reference control plane (dispatch/) share this
// file, so one list of limits holds on both sides of the wire.
//
// Decoders take JSON text that crossed a trust boundary: they check the
// size first, then that it is one JSON object, then every key (unknown keys
// are errors), then types and ranges, and say what was wrong in words an
// operator can act on. Encoders produce what the decoders accept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace gh::protocol {

inline constexpr const char* kPathPrefix = "/api/v1/";
inline constexpr size_t kMaxRequestBytes = 1 << 20;        // any request body
inline constexpr size_t kMaxResponseBytes = 4 << 20;       // any response body
inline constexpr size_t kMaxJobConfigBytes = 1 << 20;      // task.job.config
inline constexpr size_t kMaxRecordsPerBatch = 256;
inline constexpr size_t kMaxOutputRecordBytes = 64 << 10;  // decoded output data
inline constexpr size_t kMaxMetaFieldChars = 256;
inline constexpr int kMaxClaimWaitSeconds = 60;
inline constexpr int kMaxFreeSlots = 64;
inline constexpr int64_t kMaxSeq = (int64_t{1} << 53) - 1;
inline constexpr int kHeartbeatSeconds = 15;
// While the job runs the agent beats every second: the answer is how a
// cancel reaches it, and a cancel should reach the job within about that.
inline constexpr int kRunningHeartbeatSeconds = 1;
inline constexpr int kLostAfterSeconds = 300;

// Syntax checks shared by both sides; each returns "" when fine, else why not.
std::string task_id_problem(std::string_view id);       // [A-Za-z0-9_-]{1,64}
std::string token_problem(std::string_view token);      // [A-Za-z0-9._~+/=-]{16,256}
std::string runner_name_problem(std::string_view name); // [A-Za-z0-9._-]{1,128}
std::string resource_class_problem(std::string_view rc);// [A-Za-z0-9._/-]{1,128}

// Strict base64 (RFC 4648, padded, canonical: no whitespace, no stray bits);
// nullopt when the text is not exactly that or decodes to over max_bytes.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text, size_t max_bytes);
bool is_valid_utf8(std::string_view text);

struct ClaimRequest {
  std::string runner;
  std::string resource_class;
  int free_slots = 1;  // 1..kMaxFreeSlots
  int wait = 30;       // 0..kMaxClaimWaitSeconds
  bool operator==(const ClaimRequest&) const = default;
};

struct JobMetaWire {
  std::string project, branch, tag, trigger, revision;  // "" when absent
  bool operator==(const JobMetaWire&) const = default;
};

struct Signature {
  std::string key;      // the trusted key's name in the policy; may be ""
  std::string ed25519;  // base64 of 64 bytes
  bool operator==(const Signature&) const = default;
};

struct Task {
  std::string id;
  std::string token;
  std::string job_name;
  std::string job_config;  // CircleCI YAML text
  JobMetaWire meta;
  std::optional<Signature> signature;
  bool operator==(const Task&) const = default;
};

// Just enough of a claim answer to report on a task whose full decoding
// failed (docs/protocol.md: the agent completes it as `refused`).
struct TaskIdentity {
  std::string id, token;
};

enum class RecordType { Output, Step, Gap };
struct Record {
  int64_t seq = 0;
  RecordType type = RecordType::Output;
  std::string data;          // Output: raw bytes (base64 on the wire)
  // Step
  uint32_t index = 0;
  std::string name;
  std::string state;         // "started" | "finished"
  std::string outcome;       // finished: passed failed timed_out canceled not_run killed
  int64_t code = 0;
  int64_t duration_ms = 0;
  // Gap: seq..last_seq stand for `bytes` of dropped output
  int64_t last_seq = 0;
  uint64_t bytes = 0;
  bool operator==(const Record&) const = default;
};

struct Completion {
  std::string outcome;  // passed failed refused infra_error canceled timed_out
  int exit_code = 0;
  std::string reason;
  int64_t last_seq = -1;
  uint64_t peak_memory_bytes = 0;
  uint64_t cpu_usec = 0;
  uint64_t duration_ms = 0;
  bool operator==(const Completion&) const = default;
};

struct HeartbeatAnswer {
  bool cancel = false;
  int64_t acked = -1;
  bool operator==(const HeartbeatAnswer&) const = default;
};

struct ErrorAnswer {
  std::string error;    // bad_request unauthorized unknown_task out_of_order ...
  std::string message;
  int64_t acked = -1;   // out_of_order / missing_records
  bool operator==(const ErrorAnswer&) const = default;
};

// Encoders (compact JSON).
std::string encode(const ClaimRequest&);
std::string encode_task_answer(const Task&);  // {"task": {...}}
std::string encode_heartbeat(const std::string& state);
std::string encode(const HeartbeatAnswer&);
std::string encode_records(const std::vector<Record>&);  // {"records": [...]}
std::string encode_acked(int64_t acked);                 // {"acked": N}
std::string encode(const Completion&);
std::string encode(const ErrorAnswer&);
std::string encode_ok();                                 // {"ok": true}

// Decoders: strict, bounded. The error text names the key and the problem.
// Beyond docs/protocol.md's words: counts, sizes and durations are 0 to
// kMaxSeq, exit codes 32-bit, nesting at most 8 levels, and meta fields, the
// job name and the signature's key name hold no control characters.
Result<ClaimRequest> decode_claim(std::string_view body);
Result<Task> decode_task_answer(std::string_view body);
Result<std::string> decode_heartbeat(std::string_view body);  // the state
Result<HeartbeatAnswer> decode_heartbeat_answer(std::string_view body);
Result<std::vector<Record>> decode_records(std::string_view body);
Result<int64_t> decode_acked(std::string_view body);
Result<Completion> decode_completion(std::string_view body);
Result<ErrorAnswer> decode_error(std::string_view body);
Status decode_ok(std::string_view body);
// The task's id and token when both are well-formed, even if the rest of
// the answer is refused; nullopt otherwise.
std::optional<TaskIdentity> decode_task_identity(std::string_view body);

// The bytes a job signature covers (docs/protocol.md, Signatures). Strings
// that are not UTF-8 (they cannot arrive in a task) have their bad bytes
// replaced by U+FFFD: signers should refuse such input (is_valid_utf8).
std::string signed_bytes(const std::string& job_name, const std::string& job_config, const JobMetaWire& meta);

}  // namespace gh::protocol
