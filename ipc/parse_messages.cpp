// The parse child's request and result: fields, checks, frames
// (parse_messages.hpp).
#include "ipc/parse_messages.hpp"

#include "agent/config.hpp"
#include "policy/values.hpp"
#include "protocol/protocol.hpp"

namespace gh::ipc {

namespace {

std::string request_problem(const ParseRequest& r) {
  if (has_nul(r.display_path)) return "the request's file name holds a NUL byte";
  if (r.job_name && r.kind != ParseKind::Job) return "a job name in a request that is not for a job";
  if (r.job_name && has_nul(*r.job_name)) return "the request's job name holds a NUL byte";
  if (!r.env.empty() && r.kind != ParseKind::BrokerSettings) return "environment variables in a request that is not for the config";
  for (const auto& [k, v] : r.env)
    if (!policy::detail::valid_env_name(k)) return "the request's environment variable name " + shown_value(k) + " is not valid";
  if (r.kind == ParseKind::BuiltinPolicy && !r.bytes.empty()) return "input bytes in a request for the built-in policy";
  if (r.kind == ParseKind::BrokerSettings && r.bytes.size() > kMaxConfigBytes)
    return "a config of " + std::to_string(r.bytes.size()) + " bytes, more than " + std::to_string(kMaxConfigBytes);
  return {};
}

bool lower_hex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string parsed_policy_problem(const ParsedPolicy& p) {
  if (p.digest.size() != kPolicyDigestHexBytes || !lower_hex(p.digest))
    return "the policy's digest is not 64 lower-case hex digits";
  if (p.filters.size() != p.policy.profiles.size())
    return std::to_string(p.filters.size()) + " seccomp filters for " + std::to_string(p.policy.profiles.size()) +
           " profiles";
  for (size_t i = 0; i < p.filters.size(); ++i) {
    const size_t n = p.filters[i].size();
    if (n == 0 || n % kBpfInstructionBytes != 0)
      return "the seccomp filter of profile `" + p.policy.profiles[i].name + "` is " + std::to_string(n) +
             " bytes, not a whole number of BPF instructions";
  }
  return {};
}

std::string optional_path_problem(const std::string& what, const std::string& p) {
  if (p.empty()) return {};
  if (has_nul(p)) return what + " holds a NUL byte";
  if (auto why = policy::detail::path_problem(p); !why.empty()) return what + " " + shown_value(p) + " " + why;
  return {};
}

std::string settings_problem(const BrokerSettings& s) {
  if (auto why = protocol::runner_name_problem(s.runner_name); !why.empty())
    return "runner.name " + shown_value(s.runner_name) + " " + why;
  const std::pair<const char*, const std::string*> required[] = {{"runner.working_directory", &s.working_directory},
                                                                 {"runner.uid_lock_directory", &s.uid_lock_directory},
                                                                 {"runner.orb_directory", &s.orb_directory},
                                                                 {"runner.spool_directory", &s.spool_directory},
                                                                 {"policy", &s.policy}};
  for (const auto& [what, p] : required) {
    if (p->empty()) return std::string(what) + " is empty";
    if (auto why = optional_path_problem(what, *p); !why.empty()) return why;
  }
  if (auto why = optional_path_problem("api.auth_token_file", s.auth_token_file); !why.empty()) return why;
  if (auto why = optional_path_problem("logging.file", s.log_file); !why.empty()) return why;
  if (auto why = optional_path_problem("runner.lock_directory", s.lock_directory); !why.empty()) return why;
  if (s.uid_slice_count < 1 || s.uid_slice_count > agent::kMaxUidSlices || s.uid_slice_index >= s.uid_slice_count)
    return "runner.uid_slice " + std::to_string(s.uid_slice_index) + " of " + std::to_string(s.uid_slice_count) +
           " is not a slice";
  if (!s.metrics_listen.empty() && (has_nul(s.metrics_listen) || !agent::listen_problem(s.metrics_listen).empty()))
    return "metrics.listen " + shown_value(s.metrics_listen) + " is not a loopback address or unix socket";
  return {};
}

std::string result_problem(const ParseResult& r) {
  const int values = (r.job ? 1 : 0) + (r.policy ? 1 : 0) + (r.settings ? 1 : 0) + (r.plan ? 1 : 0) +
                     (r.needed_orbs.empty() ? 0 : 1);
  if (values > 1) return "a result holding more than one of a job, a policy, settings, a workflow plan and orb names";
  if (values == 1 && !r.diagnostics.empty()) return "a result holding both a value and errors";
  if (values == 0 && r.diagnostics.empty()) return "a result holding neither a value nor errors";
  for (const auto& j : r.available_jobs)
    if (j.empty() || has_nul(j)) return "an available job name is empty or holds a NUL byte";
  return {};
}

template <class Payload>
std::string frame(uint32_t magic, const Payload& p) {
  std::string payload = encode(p);
  Encoder h;
  uint32_t len = static_cast<uint32_t>(payload.size());
  h.u32(magic);
  h.u32(len);
  return h.take() + payload;
}

template <class T>
Result<T> decode_frame(std::string_view frame, uint32_t magic, size_t max) {
  if (frame.size() < kParseFrameHeaderBytes)
    return err("the message is " + std::to_string(frame.size()) + " bytes, shorter than its header");
  auto len = frame_length(frame.substr(0, kParseFrameHeaderBytes), magic, max);
  if (!len) return len.error();
  if (frame.size() - kParseFrameHeaderBytes != *len)
    return err("the header declares " + std::to_string(*len) + " bytes but " +
               std::to_string(frame.size() - kParseFrameHeaderBytes) + " follow it");
  return decode<T>(frame.substr(kParseFrameHeaderBytes));
}

}  // namespace

template <class C>
void fields(C& c, ParseRequest& v) {
  c.enumeration(v.kind, kParseKindCount);
  c.str(v.display_path, kMaxDisplayBytes);
  c.str(v.bytes, kMaxParseInputBytes);
  c.optional(v.job_name, [&](std::string& s) { c.str(s, kMaxDisplayBytes); });
  string_pairs(c, v.env, kMaxParseEnvEntries, kMaxEnvNameBytes, kMaxParseEnvValueBytes);
  fields(c, v.process);
  check(c, [&] { return request_problem(v); });
}

template <class C>
void fields(C& c, ParsedPolicy& v) {
  fields(c, v.policy);
  c.str(v.digest, kPolicyDigestHexBytes);
  strings(c, v.filters, policy::kMaxProfiles, kMaxFilterBytes);
  check(c, [&] { return parsed_policy_problem(v); });
}

template <class C>
void fields(C& c, BrokerSettings& v) {
  c.str(v.runner_name, 128);  // protocol::runner_name_problem
  c.str(v.working_directory, kMaxPolicyPathBytes);
  c.boolean(v.cleanup_working_directory);
  c.str(v.uid_lock_directory, kMaxPolicyPathBytes);
  c.str(v.orb_directory, kMaxPolicyPathBytes);
  c.str(v.spool_directory, kMaxPolicyPathBytes);
  c.str(v.policy, kMaxPolicyPathBytes);
  c.str(v.auth_token_file, kMaxPolicyPathBytes);
  c.str(v.metrics_listen, kMaxPolicyPathBytes + 5);  // "unix:" and a path
  c.str(v.log_file, kMaxPolicyPathBytes);
  c.boolean(v.policy_set);
  c.str(v.lock_directory, kMaxPolicyPathBytes);
  c.u32(v.uid_slice_index);
  c.u32(v.uid_slice_count);
  check(c, [&] { return settings_problem(v); });
}

template <class C>
void fields(C& c, ParseResult& v) {
  c.optional(v.job, [&](job::Job& j) { fields(c, j); });
  c.optional(v.policy, [&](ParsedPolicy& p) { fields(c, p); });
  c.optional(v.settings, [&](BrokerSettings& s) { fields(c, s); });
  c.str(v.diagnostics, kMaxDiagnosticsBytes);
  strings(c, v.available_jobs, kMaxAvailableJobs, kMaxDisplayBytes);
  c.optional(v.plan, [&](job::WorkflowPlan& p) { fields(c, p); });
  strings(c, v.needed_orbs, job::kMaxOrbs, kMaxDisplayBytes);
  check(c, [&] { return result_problem(v); });
}

#define GH_BOTH(T)                    \
  template void fields(Encoder&, T&); \
  template void fields(Decoder&, T&);
GH_BOTH(ParseRequest)
GH_BOTH(ParsedPolicy)
GH_BOTH(BrokerSettings)
GH_BOTH(ParseResult)
#undef GH_BOTH

std::string frame_request(const ParseRequest& r) { return frame(kParseRequestMagic, r); }
std::string frame_result(const ParseResult& r) { return frame(kParseResultMagic, r); }

Result<uint32_t> frame_length(std::string_view header, uint32_t magic, size_t max) {
  Decoder d(header);
  uint32_t got = 0, len = 0;
  d.u32(got);
  d.u32(len);
  if (!d.finish()) return err("a frame header of " + std::to_string(header.size()) + " bytes");
  if (got != magic) return err("the frame does not start with the expected magic number");
  if (len > max)
    return err("the frame declares " + std::to_string(len) + " bytes, more than the " + std::to_string(max) +
               " allowed");
  return len;
}

Result<ParseRequest> decode_request_frame(std::string_view f) {
  return decode_frame<ParseRequest>(f, kParseRequestMagic, kMaxParseRequestBytes);
}

Result<ParseResult> decode_result_frame(std::string_view f) {
  return decode_frame<ParseResult>(f, kParseResultMagic, kMaxParseResultBytes);
}

const char* parse_exit_meaning(int status) {
  switch (status) {
    case kParseExitBadRequest: return "it could not read the request";
    case kParseExitConfine: return "it could not apply its own seccomp filter";
    case kParseExitWrite: return "it could not write its answer";
    case kParseExitOutOfMemory: return "it ran out of memory";
    default: return "";
  }
}

const char* parser_name(ParseKind k) {
  switch (k) {
    case ParseKind::Job: return "the job parser";
    case ParseKind::Policy:
    case ParseKind::BuiltinPolicy: return "the policy parser";
    case ParseKind::BrokerSettings: return "the config parser";
  }
  return "the parser";
}

const char* failure_cost(ParseKind k) {
  switch (k) {
    case ParseKind::Job: return "the job is refused";
    case ParseKind::Policy:
    case ParseKind::BuiltinPolicy: return "no job runs under it";
    case ParseKind::BrokerSettings: return "the broker does not start";
  }
  return "nothing is used";
}

}  // namespace gh::ipc
