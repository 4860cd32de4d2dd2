// The agent's configuration (`/etc/gatehouse/gatehouse.yaml`, docs/agent.md)
// and its runner token.
//
// The file is read with the same hostile-YAML guard as job and policy files
// and every error is collected (file:line:col, the line, a caret, what is
// allowed) before the load fails: a config with one mistake yields no
// config. `GATEHOUSE_*` environment variables (`GATEHOUSE_RUNNER_SLOTS` for
// `runner.slots`) override the file; a bad override is an error naming the
// variable.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/diagnostics.hpp"
#include "common/result.hpp"

namespace gh::agent {

inline constexpr size_t kMaxAgentConfigBytes = 64 * 1024;
// runner.uid_slice.count: at most this many agents share a host's uid pools.
inline constexpr uint32_t kMaxUidSlices = 64;

enum class RunnerMode { Continuous, SingleTask };

struct ApiConfig {
  std::string url;                // https://HOST[:PORT][/PATH], no trailing `/`
  std::string auth_token_file;    // "" when the token comes from $CREDENTIALS_DIRECTORY
  std::string ca_file;            // "" = the system's CAs
  std::string client_cert;        // both or neither
  std::string client_key;
  std::string pinned_public_key;  // "sha256//BASE64[;sha256//BASE64...]" or ""
};

struct RunnerConfig {
  std::string name;
  std::string resource_class;
  std::string working_directory = "/var/lib/gatehouse/work";
  bool cleanup_working_directory = true;
  RunnerMode mode = RunnerMode::Continuous;
  int64_t max_run_time_s = 5 * 3600;
  int64_t idle_timeout_s = 0;  // 0 = never
  int slots = 1;
  std::string spool_directory = "/var/lib/gatehouse/spool";
  uint64_t spool_limit = uint64_t{256} << 20;  // bytes, per task
  uint64_t min_free_space = uint64_t{1} << 30;  // bytes free under working_directory to claim
  std::string uid_lock_directory = "/run/gatehouse/uids";
  std::string orb_directory = "/etc/gatehouse/orbs";  // the local orb folder (docs/jobs.md, "Orbs")
  int64_t drain_grace_s = 300;  // after the first SIGTERM; the agent's --drain-grace overrides it
  std::string lock_directory = "/run/gatehouse/runners";  // the broker's runner locks (--runner-lock-dir)
  // runner.uid_slice: this agent's part of every profile's uid pool, when
  // several agents on one host share a policy (docs/agent.md). 0 of 1 is
  // the whole pool.
  uint32_t uid_slice_index = 0;
  uint32_t uid_slice_count = 1;
};

struct LoggingConfig {
  std::string level = "info";  // debug | info | warn | error
  std::string file;            // "" = stderr (the journal)
};

struct AgentConfig {
  ApiConfig api;
  RunnerConfig runner;
  std::string policy = "/etc/gatehouse/policy.yaml";
  // Whether `policy` was named (in the file or GATEHOUSE_POLICY). Only the
  // default path may be missing: the broker then runs the built-in policy.
  bool policy_set = false;
  LoggingConfig logging;
  std::string metrics_listen;  // "" = off; "unix:/PATH", "127.0.0.1:PORT" or "[::1]:PORT"
};

struct AgentConfigOutcome {
  std::optional<AgentConfig> config;  // set only when there is no error
  Diagnostics diagnostics;
};

// Reads the file, then applies the GATEHOUSE_* variables in `env` (other
// variables are ignored). Without api.auth_token_file the token must come
// from systemd: `env` must hold CREDENTIALS_DIRECTORY, unless `checks`
// says otherwise.
// What parse_agent_config checks beyond each key's own value.
struct ConfigChecks {
  // A source for the runner token: api.auth_token_file, or
  // CREDENTIALS_DIRECTORY in `env`. The agent needs one, unless the broker
  // that started it hands it the token as an open file (--token-fd). The
  // broker takes only a few settings from the same file (the parse child
  // answers them, ipc/parse_messages.hpp: BrokerSettings) and never reads
  // the token, so the parse child turns this off.
  bool token_source = true;
};
AgentConfigOutcome load_agent_config(const std::string& path, const std::map<std::string, std::string>& env,
                                     ConfigChecks checks = {});
// The same for text already read (tests, the parse child).
AgentConfigOutcome parse_agent_config(const std::string& display_path, const std::string& text,
                                      const std::map<std::string, std::string>& env, ConfigChecks checks = {});

// Syntax checks shared with the client; "" when fine, else what is wrong.
std::string api_url_problem(const std::string& url);
std::string pinned_key_problem(const std::string& pins);
std::string listen_problem(const std::string& listen);

}  // namespace gh::agent
