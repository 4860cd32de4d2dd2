// Streaming secret masker: every byte a step prints passes through one of
// these in the worker before it leaves the sandbox. Every occurrence of a
// secret, in any of its forms (common/secret_forms.hpp), becomes
// "[masked:NAME]".
//
// Masking is a guard against accidents (a tool that logs its config), not
// against the job: the job holds the values it is given and can always
// print them in a form nobody looks for. That is why it can run here, in
// the job's own pid 1, and not in root (SECURITY.md, "Secrets").
//
// Output is delayed as little as possible: after each feed() the only
// bytes held back are the longest tail of the stream that is a proper
// prefix of some form (so a secret split across chunks is still caught,
// and ordinary output flows through at once). Overlapping matches are
// resolved leftmost-longest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gh::worker {

class Masker {
 public:
  explicit Masker(std::vector<std::pair<std::string /*name*/, std::string /*value*/>> secrets);
  ~Masker();
  Masker(const Masker&) = delete;
  Masker& operator=(const Masker&) = delete;

  std::string feed(std::string_view chunk);  // bytes safe to emit now
  std::string flush();                       // end of stream: the held-back tail, masked
  size_t max_hold() const;                   // most bytes feed() can ever hold back
  size_t held() const;                       // bytes held back right now
  size_t pattern_count() const;

  struct Automaton;  // masker.cpp

 private:
  void scan(bool eof, std::string& out);

  std::shared_ptr<const Automaton> ac_;
  std::string pending_;  // not yet emitted
  size_t scanned_ = 0;   // bytes of pending_ already run through the automaton
  uint32_t state_ = 0;
  // The best match seen among pending_ bytes not yet committed, if any.
  bool have_best_ = false;
  size_t best_start_ = 0, best_end_ = 0;
  uint32_t best_pattern_ = 0;
};

}  // namespace gh::worker
