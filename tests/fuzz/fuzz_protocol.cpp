// libFuzzer target: every control-plane decoder on arbitrary bytes. None
// may crash, hang or leak; a decoder that fails must say why; and whatever
// one accepts must survive its encoder and decode to the same value (what
// the agent stores and resends is what it was given).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/protocol.hpp"

namespace {

using namespace gh::protocol;

template <typename T, typename Decode, typename Encode>
void round_trip(std::string_view input, Decode decode, Encode encode_fn) {
  gh::Result<T> first = decode(input);
  if (!first.ok()) {
    if (first.error().message.empty()) abort();
    return;
  }
  const std::string again = encode_fn(first.value());
  gh::Result<T> second = decode(again);
  if (!second.ok() || !(second.value() == first.value())) abort();
  if (encode_fn(second.value()) != again) abort();  // the encoding is stable
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  round_trip<ClaimRequest>(in, decode_claim, [](const ClaimRequest& v) { return encode(v); });
  round_trip<Task>(in, decode_task_answer, encode_task_answer);
  round_trip<std::string>(in, decode_heartbeat, encode_heartbeat);
  round_trip<HeartbeatAnswer>(in, decode_heartbeat_answer, [](const HeartbeatAnswer& v) { return encode(v); });
  round_trip<std::vector<Record>>(in, decode_records, encode_records);
  round_trip<int64_t>(in, decode_acked, encode_acked);
  round_trip<Completion>(in, decode_completion, [](const Completion& v) { return encode(v); });
  round_trip<ErrorAnswer>(in, decode_error, [](const ErrorAnswer& v) { return encode(v); });
  const gh::Status ok = decode_ok(in);
  if (!ok.ok() && ok.error().message.empty()) abort();
  // A full task implies its identity; the identity alone must be sound.
  const auto who = decode_task_identity(in);
  if (auto task = decode_task_answer(in); task.ok() && (!who || who->id != task->id || who->token != task->token))
    abort();
  if (who && (!task_id_problem(who->id).empty() || !token_problem(who->token).empty())) abort();
  return 0;
}
