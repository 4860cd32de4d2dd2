// What the Docker proxy tells the broker, on the pipe at its fd 5: each
// refusal (for the audit log, as it happens) and, at the end, what its
// cleanup could not remove. The proxy parsed the job's requests, so the
// broker reads this as hostile input: a frame is a u32 length (at most
// kMaxReportBytes, checked before the payload is read) then one
// ProxyReport in ipc/codec.hpp's encoding, every string bounded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ipc/codec.hpp"

namespace gh::docker {

inline constexpr size_t kMaxReportBytes = 16 * 1024;

struct ProxyReport {
  enum class Kind : uint32_t { Refusal = 0, CleanupFailed = 1, CleanupDone = 2 };
  Kind kind = Kind::Refusal;
  std::string rule;     // Refusal: the rule that refused (docs/docker.md)
  uint32_t status = 0;  // Refusal: the HTTP status the job got
  std::string request;  // Refusal: "POST /containers/create", bounded
  std::string text;     // Refusal: the message; CleanupFailed: what was left
};

void fields(ipc::Encoder& c, ProxyReport& r);
void fields(ipc::Decoder& c, ProxyReport& r);

std::string frame_report(const ProxyReport& r);

// Frames off the pipe: feed() what read() gave, then take next() until it
// yields nothing. A bad frame is sticky: the proxy broke the protocol.
class ReportReader {
 public:
  bool feed(std::string_view bytes);
  std::optional<ProxyReport> next();
  bool broken() const { return broken_; }

 private:
  std::string buf_;
  bool broken_ = false;
};

}  // namespace gh::docker
