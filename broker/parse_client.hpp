// The broker's side of the parse child (docs/architecture.md): every file
// the broker needs as typed data (the job, the policy, its own settings
// from gatehouse.yaml) is parsed by gatehouse-parse, started confined for
// that one request, and its answer is decoded and checked as hostile.
//
// Confinement, set up between fork and exec: no supplementary groups, uid
// and gid 65534 (nobody), so no capabilities; no_new_privs; killed if the
// broker dies; rlimits: no core, CPU seconds (the wall-clock limit),
// address space 1 GiB (not in a sanitizer build: AddressSanitizer
// reserves terabytes), file size 0 (64 KiB for policies: libseccomp exports each
// filter into a memfd), 8 fds; stdin and stdout pipes, stderr /dev/null,
// no other fd; an empty environment; cwd /. The child makes itself
// non-dumpable and applies its own seccomp allowlist before it reads a
// byte (parse/main.cpp).
//
// The broker writes the request while it reads the answer (the request can
// be 1 MiB; neither side waits on the other), bounds the answer
// (ipc::kMaxParseResultBytes, checked from its header before it is read),
// and kills the child at the wall-clock limit. Every failure is an error
// naming what happened:
//   "the job parser crashed (killed by signal 11); the job is refused"
//   "the job parser did not answer within 10 s; the job is refused"
//   "the job parser failed (exit status 3: it could not apply its own seccomp filter); ..."
//   "the job parser's answer is malformed: ...; the job is refused"
// A file with errors is not a failure: the result carries the rendered
// diagnostics instead of a value.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "ipc/parse_messages.hpp"

namespace gh::broker {

inline constexpr const char* kDefaultPolicyCacheDir = "/run/gatehouse/policies";

struct ParseClientOptions {
  // The parser binary: this when set, else $GATEHOUSE_PARSE, else
  // find_libexec("gatehouse-parse", "parse"). It is opened once, and that
  // file is both executed and named in the cache key. (It must be an ELF
  // binary: it is executed through a close-on-exec descriptor, which a
  // script's interpreter could not open.)
  std::string parser;
  // Where parsed policies are kept (policy_cache.hpp); "" = no cache.
  std::string cache_dir = kDefaultPolicyCacheDir;
  // Wall clock for the whole exchange; also the child's CPU limit.
  std::chrono::milliseconds timeout{10000};
  // Called in the broker once the child has exec'd, before the request is
  // written: the child is then confining itself and will wait in read().
  // For tests that look at the confined child from outside, and for logs.
  std::function<void(pid_t)> on_started;
};

// Each runs gatehouse-parse confined and returns its result (a value, or
// the file's rendered errors), or an error when the child crashed, hung, or
// broke framing. Input over the kind's limit (1 MiB for jobs and policies,
// 64 KiB for the config) is refused here with the parser's own message, as
// a result with diagnostics.
Result<ipc::ParseResult> parse_job_confined(std::string_view bytes, const std::string& display,
                                            const job::ProcessInput& in,
                                            const ParseClientOptions& opts = {});
Result<ipc::ParseResult> parse_job_confined(std::string_view bytes, const std::string& display,
                                            const std::optional<std::string>& job_name,
                                            const ParseClientOptions& opts = {});
// Cached: a policy that parsed is kept under opts.cache_dir, keyed by the
// SHA-256 of its bytes and the parser binary's identity.
Result<ipc::ParseResult> parse_policy_confined(std::string_view bytes, const std::string& display,
                                               const ParseClientOptions& opts = {});
Result<ipc::ParseResult> builtin_policy_confined(const ParseClientOptions& opts = {});  // cached
// `env`: the broker's environment; only GATEHOUSE_* and
// CREDENTIALS_DIRECTORY are passed on (the config's overrides).
Result<ipc::ParseResult> parse_settings_confined(std::string_view bytes, const std::string& display,
                                                 const std::map<std::string, std::string>& env,
                                                 const ParseClientOptions& opts = {});

// Counters since the process started (for metrics, and for tests that must
// tell a cache hit from a run).
struct ParseClientStats {
  uint64_t children = 0;      // parse children started
  uint64_t cache_hits = 0;    // policies answered from the cache
  uint64_t cache_stores = 0;  // policies written to the cache
};
ParseClientStats parse_client_stats();

}  // namespace gh::broker
