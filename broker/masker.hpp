// Streaming secret masker: every byte a job prints passes through one of
// these before it reaches a log or a terminal.
//
// Each secret is looked for in the forms a build tool is likely to print it
// in: as is; base64 (standard and URL-safe, at each of the three byte
// alignments it can have inside a longer base64 stream); URL
// percent-encoding (upper/lower hex, and form encoding with '+' for space);
// hex (lower/upper); JSON string escaping (with and without "\/", with
// non-ASCII as \uXXXX or raw, upper/lower hex). Every occurrence becomes
// "[masked:NAME]".
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

namespace gh::broker {

// The forms a masker looks for, for one secret value: no duplicates, none
// shorter than 8 bytes except the value itself. Exposed for tests and for
// `policy explain`-style tools.
std::vector<std::string> secret_forms(std::string_view value);

// What masking costs: the total length of a value's forms. The automaton
// takes about 40 bytes of memory per pattern byte while it is built (about
// 21 once built), so the secrets one job may hold are capped in these
// units (load_secrets refuses more). A 40-byte token is ~360 bytes of
// patterns, a 3.6 KB PEM key ~56 KB, 64 KiB of random bytes ~2.6 MB.
inline constexpr size_t kMaxMaskPatternBytes = 8u << 20;
size_t mask_pattern_bytes(std::string_view value);

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

}  // namespace gh::broker
