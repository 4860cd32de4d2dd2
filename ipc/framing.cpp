#include <cstring>

#include "ipc/messages.hpp"

namespace gh::ipc {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

bool Reader::u32(uint32_t& v) {
  if (data_.size() - pos_ < 4) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(data_[pos_ + static_cast<size_t>(i)])) << (8 * i);
  pos_ += 4;
  return true;
}

bool Reader::u64(uint64_t& v) {
  if (data_.size() - pos_ < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(data_[pos_ + static_cast<size_t>(i)])) << (8 * i);
  pos_ += 8;
  return true;
}

bool Reader::str(std::string& s, size_t max_len) {
  uint32_t n = 0;
  if (!u32(n)) return false;
  if (n > max_len || data_.size() - pos_ < n) return false;
  s.assign(data_.substr(pos_, n));
  pos_ += n;
  return true;
}

std::string encode(Type t, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  put_u32(out, kMagic);
  put_u32(out, static_cast<uint32_t>(t));
  put_u32(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

DecodeResult decode(std::string_view packet, size_t max_bytes) {
  // Framing before meaning: size, magic, declared length, then type.
  if (packet.size() > max_bytes) return {std::nullopt, "message larger than " + std::to_string(max_bytes) + " bytes"};
  if (packet.size() < kHeaderBytes) return {std::nullopt, "truncated message header (" + std::to_string(packet.size()) + " bytes)"};
  Reader r(packet);
  uint32_t magic = 0, type = 0, len = 0;
  (void)r.u32(magic);
  (void)r.u32(type);
  (void)r.u32(len);
  if (magic != kMagic) return {std::nullopt, "bad message magic"};
  if (len != packet.size() - kHeaderBytes)
    return {std::nullopt, "declared payload length " + std::to_string(len) + " does not match the packet (" +
                              std::to_string(packet.size() - kHeaderBytes) + " bytes)"};
  if (type < static_cast<uint32_t>(Type::Hello) || type > static_cast<uint32_t>(Type::Cancel))
    return {std::nullopt, "unknown message type " + std::to_string(type)};
  return {Message{static_cast<Type>(type), std::string(packet.substr(kHeaderBytes))}, {}};
}

static constexpr size_t kMaxSpecString = 256 * 1024;
static constexpr uint32_t kMaxSpecSteps = 1000;
static constexpr uint32_t kMaxSpecList = 4096;

std::string encode_job_spec(const JobSpec& spec) {
  std::string out;
  put_str(out, spec.scratch_dir);
  put_u32(out, static_cast<uint32_t>(spec.steps.size()));
  for (const auto& s : spec.steps) {
    put_str(out, s.name);
    put_str(out, s.command);
    put_u32(out, static_cast<uint32_t>(s.argv_prefix.size()));
    for (const auto& a : s.argv_prefix) put_str(out, a);
    put_u32(out, static_cast<uint32_t>(s.env.size()));
    for (const auto& e : s.env) put_str(out, e);
    put_str(out, s.working_directory);
    put_u32(out, s.no_output_timeout_s);
    put_u32(out, s.when);
    put_u32(out, s.background ? 1 : 0);
  }
  put_u32(out, static_cast<uint32_t>(spec.masks.size()));
  for (const auto& [name, value] : spec.masks) {
    put_str(out, name);
    put_str(out, value);
  }
  put_str(out, spec.bash_env);
  return out;
}

static bool read_list(Reader& r, std::vector<std::string>& v) {
  uint32_t n = 0;
  if (!r.u32(n) || n > kMaxSpecList) return false;
  v.resize(n);
  for (auto& s : v)
    if (!r.str(s, kMaxSpecString)) return false;
  return true;
}

std::optional<JobSpec> decode_job_spec(std::string_view payload) {
  Reader r(payload);
  JobSpec spec;
  uint32_t n = 0;
  if (!r.str(spec.scratch_dir, 4096) || !r.u32(n) || n > kMaxSpecSteps) return std::nullopt;
  spec.steps.resize(n);
  for (auto& s : spec.steps) {
    uint32_t bg = 0;
    if (!r.str(s.name, kMaxSpecString) || !r.str(s.command, kMaxSpecString) || !read_list(r, s.argv_prefix) ||
        !read_list(r, s.env) || !r.str(s.working_directory, 4096) || !r.u32(s.no_output_timeout_s) || !r.u32(s.when) ||
        !r.u32(bg) || bg > 1 || s.when > 2)
      return std::nullopt;
    s.background = bg == 1;
  }
  if (!r.u32(n) || n > kMaxSpecMasks) return std::nullopt;
  spec.masks.resize(n);
  for (auto& [name, value] : spec.masks)
    if (!r.str(name, 4096) || !r.str(value, kMaxSpecString) || value.empty()) return std::nullopt;
  if (!r.str(spec.bash_env, 4096) || (!spec.bash_env.empty() && spec.bash_env[0] != '/')) return std::nullopt;
  if (!r.at_end()) return std::nullopt;
  return spec;
}

std::string describe_step(uint32_t outcome, uint32_t code) {
  switch (static_cast<StepOutcome>(outcome)) {
    case StepOutcome::Exited: return "exit " + std::to_string(code);
    case StepOutcome::Signaled: return "killed by signal " + std::to_string(code);
    case StepOutcome::TimedOut: return "no output for " + std::to_string(code) + "s: killed";
    case StepOutcome::NotRun: return "not run";
    case StepOutcome::SpawnFailed: return "could not start";
  }
  return "unknown";
}

}  // namespace gh::ipc
