// The parse child's channel (docs/architecture.md): the broker writes ONE
// request on the child's stdin, the child writes ONE result on its stdout
// and exits. Both are framed (a magic number and the payload's length,
// checked before the payload is read or allocated) and encoded with
// ipc/codec.hpp.
//
//   frame:   u32 magic (kParseRequestMagic / kParseResultMagic)
//            u32 payload length (at most kMaxParseRequestBytes / kMaxParseResultBytes)
//            payload: ParseRequest / ParseResult fields
//
// The broker treats the result as hostile: the child parsed hostile bytes.
// Decoding checks every bound and the meaning the broker relies on (the
// job and policy codecs' checks, and the ones listed at each type below).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "ipc/codec.hpp"
#include "ipc/job_codec.hpp"
#include "ipc/policy_codec.hpp"
#include "policy/job.hpp"
#include "policy/policy.hpp"

namespace gh::ipc {

inline constexpr uint32_t kParseRequestMagic = 0x47485051;  // "GHPQ" as a number
inline constexpr uint32_t kParseResultMagic = 0x47485052;   // "GHPR" as a number
inline constexpr size_t kParseFrameHeaderBytes = 8;

// The agent config is at most 64 KiB (agent/config.hpp); job and policy
// files at most 1 MiB (policy/job.hpp, policy/policy.hpp).
inline constexpr size_t kMaxConfigBytes = 64 * 1024;
inline constexpr size_t kMaxParseInputBytes = 1 << 20;
// The broker passes the GATEHOUSE_* variables and CREDENTIALS_DIRECTORY
// for the config's overrides; each value is one setting.
inline constexpr size_t kMaxParseEnvEntries = 256;
inline constexpr size_t kMaxParseEnvValueBytes = kMaxConfigBytes;
// A request: the input, its name and a little more.
inline constexpr size_t kMaxParseRequestBytes = kMaxParseInputBytes + job::kMaxOrbBytes + 16 * kMaxDisplayBytes +
                                                job::kMaxPipelineParameters * (kMaxEnvNameBytes + 8) + job::kMaxOrbs * 8 +
                                                kMaxParseEnvEntries * (kMaxEnvNameBytes + 8) + kMaxConfigBytes;
// A result. The largest legitimate one is a policy of many profiles with
// their compiled filters (about 8.5 KiB each for the built-in filter, at
// most 32 KiB); YAML aliases and `extends` can make a typed job or policy
// larger than its file, and the child answers an error instead of a result
// past this bound.
inline constexpr size_t kMaxParseResultBytes = 32u << 20;
// The rendered errors (the child cuts them to this, saying so: a 1 MiB line
// is shown once per error on it).
inline constexpr size_t kMaxDiagnosticsBytes = 1 << 20;
// Job names listed when --job is missing or wrong. Each takes at least two
// bytes of the file ("a:"); a single-job file lists its stem (a display path).
inline constexpr size_t kMaxAvailableJobs = job::kMaxJobFileBytes / 2;
// A compiled seccomp filter: whole 8-byte BPF instructions, at most
// BPF_MAXINSNS (4096) of them.
inline constexpr size_t kBpfInstructionBytes = 8;
inline constexpr size_t kMaxBpfInstructions = 4096;
inline constexpr size_t kMaxFilterBytes = kMaxBpfInstructions * kBpfInstructionBytes;
inline constexpr size_t kPolicyDigestHexBytes = 64;  // lower-case hex SHA-256

enum class ParseKind : uint32_t {
  Job,             // bytes: a job file; job_name: --job
  Policy,          // bytes: a policy file
  BuiltinPolicy,   // no bytes: the built-in policy (its filter is compiled by the child too)
  BrokerSettings,  // bytes: gatehouse.yaml; env: its GATEHOUSE_* overrides
};
inline constexpr uint32_t kParseKindCount = 4;

// Checks: display_path and job_name hold no NUL; bytes within the kind's
// limit (none for BuiltinPolicy); job_name only for Job; env only for
// BrokerSettings, with names that are variable names.
struct ParseRequest {
  ParseKind kind = ParseKind::Job;
  std::string display_path;  // the file's name in messages (file:line:col)
  std::string bytes;         // the file's contents
  std::optional<std::string> job_name;
  std::vector<std::pair<std::string, std::string>> env;
  job::ProcessInput process;  // Job only: pipeline values, --workflow, orbs (its job_name is unused)
};

// Checks: the digest is 64 lower-case hex digits; one filter per profile,
// in the same order, each a whole number of BPF instructions (1 to 4096).
struct ParsedPolicy {
  policy::Policy policy;
  std::string digest;                // policy::policy_digest(policy)
  std::vector<std::string> filters;  // raw BPF (sock_filter array) per profile
};

// The settings the broker takes from gatehouse.yaml (agent/config.hpp).
// Checks: paths absolute in normal form ("" allowed where marked); the
// runner name as the control plane allows it; metrics.listen as the agent
// allows it; the uid slice one of its count.
struct BrokerSettings {
  std::string runner_name;               // runner.name
  std::string working_directory;         // runner.working_directory
  bool cleanup_working_directory = true;  // runner.cleanup_working_directory
  std::string uid_lock_directory;        // runner.uid_lock_directory
  std::string orb_directory;             // runner.orb_directory
  std::string spool_directory;           // runner.spool_directory
  std::string policy;                    // policy (the file's path)
  std::string auth_token_file;           // api.auth_token_file ("" = a systemd credential)
  std::string metrics_listen;            // metrics.listen ("" = off)
  std::string log_file;                  // logging.file ("" = stderr)
  bool policy_set = false;               // `policy` was named (else it is the default path)
  std::string lock_directory{};          // runner.lock_directory ("" = unset: the daemon then needs --runner-lock-dir)
  uint32_t uid_slice_index = 0;          // runner.uid_slice.index, below the count
  uint32_t uid_slice_count = 1;          // runner.uid_slice.count, 1 to agent::kMaxUidSlices
};

// Checks: at most one of job, policy, settings; one of them, or errors in
// `diagnostics`, never both.
struct ParseResult {
  std::optional<job::Job> job;
  std::optional<ParsedPolicy> policy;
  std::optional<BrokerSettings> settings;
  // The rendered errors, file:line:col with the line and a caret, as
  // `gatehouse run` has always printed them; for a job, followed by the
  // "available jobs: a b c" line when there are names to list.
  std::string diagnostics;
  std::vector<std::string> available_jobs;  // the file's job names (config files)
  std::optional<job::WorkflowPlan> plan;    // a Job request with a workflow and no job name
  std::vector<std::string> needed_orbs;     // orbs the config names that the request did not carry
};

template <class C> void fields(C& c, ParseRequest& v);
template <class C> void fields(C& c, ParsedPolicy& v);
template <class C> void fields(C& c, BrokerSettings& v);
template <class C> void fields(C& c, ParseResult& v);

// Frames: header and payload in one string.
std::string frame_request(const ParseRequest& r);
std::string frame_result(const ParseResult& r);
// The payload length a frame header declares, after checking its magic and
// that the length is within `max`. `header` is kParseFrameHeaderBytes long.
Result<uint32_t> frame_length(std::string_view header, uint32_t magic, size_t max);
// A whole frame (header, then exactly the declared payload) decoded.
Result<ParseRequest> decode_request_frame(std::string_view frame);
Result<ParseResult> decode_result_frame(std::string_view frame);

// How gatehouse-parse exits when it cannot answer (its stderr goes
// nowhere, so the status is its only word); 0 after an answer.
inline constexpr int kParseExitBadRequest = 2;   // the request was not a valid frame
inline constexpr int kParseExitConfine = 3;      // it could not apply its own seccomp filter
inline constexpr int kParseExitWrite = 4;        // writing the answer failed
inline constexpr int kParseExitOutOfMemory = 5;  // memory ran out (RLIMIT_AS) and no answer could be made
// "it could not apply its own seccomp filter" for those codes; "" for others.
const char* parse_exit_meaning(int status);

// "the job parser", "the policy parser", "the config parser": how errors
// name the child; and what its failure costs ("the job is refused").
const char* parser_name(ParseKind k);
const char* failure_cost(ParseKind k);

}  // namespace gh::ipc
