// The spool's on-disk format (see spool.hpp for the layout): framing,
// checksums, the task and state files, and the careful file I/O they need.
// Everything read back is checked; nothing here trusts the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/protocol.hpp"
#include "common/result.hpp"

namespace gh::agent::spool_format {

constexpr char kTaskFile[] = "task.json";
constexpr char kStateFile[] = "state.json";
constexpr char kLogFile[] = "records.log";
constexpr char kLogMagic[] = "GHSPOOL1";
constexpr size_t kLogHeaderBytes = 24;   // magic, first seq, checksum
constexpr size_t kFrameHeaderBytes = 12;  // checksum, payload length
constexpr size_t kMinPayloadBytes = 9;    // type, seq
constexpr size_t kMaxPayloadBytes = protocol::kMaxOutputRecordBytes + 512;
constexpr size_t kMaxTaskFileBytes = protocol::kMaxJobConfigBytes * 2 + (64 << 10);
constexpr size_t kMaxStateFileBytes = 256 << 10;
constexpr size_t kMaxReasonBytes = 64 << 10;

struct StateFile {
  int64_t acked = -1;
  uint64_t dropped_bytes = 0, dropped_records = 0;
  std::optional<protocol::Completion> completion;
};

std::string errno_text(const std::string& what);  // what + strerror(errno)
uint64_t get_le(std::string_view in, size_t at, int n);
uint64_t checksum(std::string_view bytes);  // the first 8 bytes of SHA-256
std::string log_header(int64_t first_seq);
std::string encode_payload(const protocol::Record& r);
std::string make_frame(const std::string& payload);
bool frame_checksum_ok(std::string_view frame);  // a whole frame, header included
// Checks a payload whose checksum already matched; the meaning is checked
// too, since a matching checksum only says the bytes are what was written.
Result<protocol::Record> decode_payload(std::string_view payload);

Status write_all(int fd, std::string_view bytes);
Status pwrite_all(int fd, std::string_view bytes, uint64_t offset);
Status pread_all(int fd, std::string& out, size_t n, uint64_t offset);
bool all_zero(int fd, uint64_t from, uint64_t to);
int open_dir_at(int at, const char* name);  // no symlinks
// A bounded read of a regular file in the task folder (never a symlink).
Result<std::string> read_small(int dir, const char* name, size_t max);
// temp file, fsync, rename, fsync(dir): the old or the new content, whole.
// Without sync_dir the rename may be undone by a crash (the old content
// comes back whole): for updates where the old content is still correct.
Status write_atomic(int dir, const std::string& name, std::string_view bytes, bool sync_dir = true);

// Throws nlohmann's exception on text that is not UTF-8.
std::string encode_task_file(const protocol::Task& t, int64_t created_ns);
Result<protocol::Task> decode_task_file(const std::string& text, int64_t& created_ns);
std::string encode_state_file(const StateFile& s);
Result<StateFile> decode_state_file(const std::string& text);

}  // namespace gh::agent::spool_format
