#include "docker/reports.hpp"

namespace gh::docker {

namespace {

template <class C>
void report_fields(C& c, ProxyReport& r) {
  c.enumeration(r.kind, 3);
  c.str(r.rule, 128);
  c.u32(r.status);
  c.str(r.request, 1024);
  c.str(r.text, 4096);
}

}  // namespace

void fields(ipc::Encoder& c, ProxyReport& r) { report_fields(c, r); }
void fields(ipc::Decoder& c, ProxyReport& r) { report_fields(c, r); }

// Cut to the bounds the decoder checks, so a long request line or message
// never turns a refusal into a broken frame.
std::string frame_report(const ProxyReport& r) {
  ProxyReport b = r;
  b.rule.resize(std::min<size_t>(b.rule.size(), 128));
  b.request.resize(std::min<size_t>(b.request.size(), 1024));
  b.text.resize(std::min<size_t>(b.text.size(), 4096));
  std::string payload = ipc::encode(b);
  ipc::Encoder e;
  uint32_t len = static_cast<uint32_t>(payload.size());
  e.u32(len);
  return e.take() + payload;
}

bool ReportReader::feed(std::string_view bytes) {
  if (broken_) return false;
  buf_.append(bytes);
  return true;
}

std::optional<ProxyReport> ReportReader::next() {
  if (broken_ || buf_.size() < 4) return std::nullopt;
  ipc::Decoder d(std::string_view(buf_).substr(0, 4));
  uint32_t len = 0;
  d.u32(len);
  if (len > kMaxReportBytes) {
    broken_ = true;
    return std::nullopt;
  }
  if (buf_.size() - 4 < len) return std::nullopt;
  auto r = ipc::decode<ProxyReport>(std::string_view(buf_).substr(4, len));
  buf_.erase(0, 4 + len);
  if (!r) {
    broken_ = true;
    return std::nullopt;
  }
  return *r;
}

}  // namespace gh::docker
