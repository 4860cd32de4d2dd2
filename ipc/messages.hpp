// Every message between the broker and the worker, and the phase in which
// each is allowed (OpenSSH monitor style: one list, checked in one place).
//
// Transport: one SOCK_SEQPACKET socketpair, so the kernel keeps message
// boundaries; a message is one packet: a fixed header then the payload.
// The broker treats everything the worker sends as hostile: size first,
// then header framing, then type, then phase, then the payload's meaning.
//
//   direction        type            phases allowed           payload
//   worker->broker   Hello           AwaitHello               protocol version (u32)
//   broker->worker   JobSpec         (sent in AwaitHello)     steps, environment, secrets to mask (encode_job_spec)
//   worker->broker   StepStarted     Running                  step index (u32)
//   worker->broker   Output          Running                  step index (u32), bytes
//   worker->broker   StepFinished    Running                  step index, outcome, code, duration, (u32s/u64)
//   worker->broker   JobFinished     Running                  none
//   broker->worker   Cancel          Running                  reason (u32)
//
// After JobFinished the broker is in Done and accepts nothing more: any
// further packet is misbehaviour (exit 4).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gh::ipc {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr uint32_t kMagic = 0x47480001;   // "GH" + framing version
inline constexpr size_t kHeaderBytes = 12;       // magic, type, payload length
inline constexpr size_t kMaxOutputChunk = 32 * 1024;
inline constexpr size_t kMaxMessageBytes = 1 << 20;  // JobSpec is the largest
inline constexpr size_t kMaxWorkerMessageBytes = kHeaderBytes + 8 + kMaxOutputChunk;

// The fd number the worker finds its channel on after execve.
inline constexpr int kWorkerChannelFd = 3;

enum class Type : uint32_t {
  Hello = 1,
  JobSpec = 2,
  StepStarted = 3,
  Output = 4,
  StepFinished = 5,
  JobFinished = 6,
  Cancel = 7,
};

enum class Phase { AwaitHello, Running, Done };

// May the worker send `t` while the broker is in `p`?
constexpr bool worker_message_allowed(Type t, Phase p) {
  switch (t) {
    case Type::Hello: return p == Phase::AwaitHello;
    case Type::StepStarted:
    case Type::Output:
    case Type::StepFinished:
    case Type::JobFinished: return p == Phase::Running;
    case Type::JobSpec:
    case Type::Cancel: return false;  // broker->worker only
  }
  return false;
}

enum class StepOutcome : uint32_t {
  Exited = 1,        // code = exit status
  Signaled = 2,      // code = signal number
  TimedOut = 3,      // no_output_timeout hit; code = seconds
  NotRun = 4,        // skipped by `when`
  SpawnFailed = 5,   // code = errno
};

// How a step ended, in words: "exit 3", "killed by signal 9", "no output
// for 600s: killed", "not run", "could not start".
std::string describe_step(uint32_t outcome, uint32_t code);

enum class CancelReason : uint32_t { MaxRunTime = 1, Operator = 2 };

struct Message {
  Type type{};
  std::string payload;
};

// Frames one message (header + payload).
std::string encode(Type t, std::string_view payload);

// Checks framing of one received packet: size bounds, magic, declared length
// equals the packet's, known type. Returns the message or an error text.
struct DecodeResult {
  std::optional<Message> message;
  std::string error;
};
DecodeResult decode(std::string_view packet, size_t max_bytes);

// Little-endian field helpers for payloads, bounds-checked.
void put_u32(std::string& out, uint32_t v);
void put_u64(std::string& out, uint64_t v);
void put_str(std::string& out, std::string_view s);  // u32 length + bytes

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool u32(uint32_t& v);
  bool u64(uint64_t& v);
  bool str(std::string& s, size_t max_len);
  bool at_end() const { return pos_ == data_.size(); }
  std::string_view rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// The job as the worker needs it: already validated by the broker.
struct SpecStep {
  std::string name;
  std::string command;
  std::vector<std::string> argv_prefix;  // shell words; the script path is appended
  std::vector<std::string> env;          // NAME=value, complete environment of the step
  std::string working_directory;         // absolute, in the job's view
  uint32_t no_output_timeout_s = 600;
  uint32_t when = 0;                     // 0 on_success, 1 on_fail, 2 always
  bool background = false;
};

struct JobSpec {
  std::vector<SpecStep> steps;
  std::string scratch_dir;  // where the worker writes step scripts (job view)
  // (name, value) of every secret the job can see, however it sees it
  // (environment or /run/secrets file): the worker masks them in all the
  // output it relays (worker/masker.hpp). At most kMaxSpecMasks.
  std::vector<std::pair<std::string, std::string>> masks;
  // $BASH_ENV: a file the worker creates empty, as the job's uid, before
  // the first step; bash reads it at the start of every step ("" = none).
  std::string bash_env;
};
inline constexpr uint32_t kMaxSpecMasks = 256;

std::string encode_job_spec(const JobSpec& spec);
std::optional<JobSpec> decode_job_spec(std::string_view payload);

}  // namespace gh::ipc
