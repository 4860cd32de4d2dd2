// libFuzzer target: the broker's side of its stream channels (the agent
// link, the client channel and the job events the agent reads;
// ipc/broker_messages.hpp). The input is fed to a BrokerStreamReader in
// pieces whose sizes the input's first byte picks, as read() would hand
// them over; every message it yields must be within its type's bound, and
// each payload, decoded as its type, must re-encode to exactly its bytes
// (one encoding per value). A stream broken once stays broken.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ipc/broker_messages.hpp"

namespace {

using namespace gh::ipc;

template <class T>
void round_trip(std::string_view payload) {
  if (auto v = decode<T>(payload); v && encode(*v) != payload) abort();
}

void check(const BrokerMessage& m) {
  if (m.payload.size() > broker_msg_bound(static_cast<uint32_t>(m.type))) abort();
  switch (m.type) {
    case BrokerMsg::JobHeader: return round_trip<JobHeaderEvent>(m.payload);
    case BrokerMsg::StepStarted: return round_trip<StepStartedEvent>(m.payload);
    case BrokerMsg::Output: return round_trip<OutputEvent>(m.payload);
    case BrokerMsg::StepFinished: return round_trip<StepFinishedEvent>(m.payload);
    case BrokerMsg::Note:
    case BrokerMsg::Diagnostic: return round_trip<TextEvent>(m.payload);
    case BrokerMsg::Setup: return round_trip<SetupEvent>(m.payload);
    case BrokerMsg::Summary: return round_trip<SummaryEvent>(m.payload);
    case BrokerMsg::Result: return round_trip<ResultEvent>(m.payload);
    case BrokerMsg::Cancel: return round_trip<CancelRequest>(m.payload);
    case BrokerMsg::Plan: return round_trip<PlanEvent>(m.payload);
    case BrokerMsg::Hello: return round_trip<HelloRequest>(m.payload);
    case BrokerMsg::RunTask: return round_trip<RunTaskRequest>(m.payload);
    case BrokerMsg::CancelTask: return round_trip<CancelTaskRequest>(m.payload);
    case BrokerMsg::Ack: return round_trip<AckRequest>(m.payload);
    case BrokerMsg::Welcome: return round_trip<WelcomeEvent>(m.payload);
    case BrokerMsg::TaskEvent: return round_trip<TaskEventMsg>(m.payload);
    case BrokerMsg::TaskRejected: return round_trip<TaskRejectedEvent>(m.payload);
    case BrokerMsg::Drain: return round_trip<DrainEvent>(m.payload);
  }
  abort();  // the reader yielded a type that is not in the list
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  BrokerStreamReader reader;
  bool broken = false;
  while (!in.empty()) {
    const std::string_view chunk = in.substr(0, piece);
    in.remove_prefix(chunk.size());
    const bool ok = reader.feed(chunk);
    if (broken && ok) abort();
    broken = !ok;
    while (auto m = reader.next()) check(*m);
  }
  return 0;
}
