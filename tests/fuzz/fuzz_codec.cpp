// libFuzzer target: the broker's decoders of the parse child's channel
// (ipc/parse_messages.hpp) on arbitrary bytes, as a result and as a
// request, both as a bare payload and as a frame. Decoding must never
// crash, hang or allocate past the input's size; whatever it accepts must
// re-encode to exactly the bytes it came from (one encoding per value: no
// field skipped, reordered or read two ways).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ipc/parse_messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = gh::ipc::decode<gh::ipc::ParseResult>(in); r && gh::ipc::encode(*r) != in) abort();
  if (auto q = gh::ipc::decode<gh::ipc::ParseRequest>(in); q && gh::ipc::encode(*q) != in) abort();
  if (auto r = gh::ipc::decode_result_frame(in); r && gh::ipc::frame_result(*r) != in) abort();
  if (auto q = gh::ipc::decode_request_frame(in); q && gh::ipc::frame_request(*q) != in) abort();
  return 0;
}
