// libFuzzer target: the broker's view of worker packets and the job spec
// decoder. Decoding must never crash, and a decoded spec must re-encode
// to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ipc/messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto d = gh::ipc::decode(in, gh::ipc::kMaxWorkerMessageBytes);
  if (d.message && gh::ipc::encode(d.message->type, d.message->payload) != in) abort();
  if (auto spec = gh::ipc::decode_job_spec(in))
    if (gh::ipc::encode_job_spec(*spec) != in) abort();
  return 0;
}
