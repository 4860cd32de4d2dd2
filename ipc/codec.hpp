// Typed, bounded encoding for everything Gatehouse's own processes hand each
// other as data: the parse child's results (a job, a policy), the sandbox
// plan, the broker's job events and the requests of its clients
// (docs/architecture.md lists every channel).
//
// One description per type, used both ways: a `fields(Coder&, T&)` function
// lists the type's fields once, with the bound of each, and works with an
// Encoder (which reads the fields and appends bytes) and a Decoder (which
// reads bytes and writes the fields). So a field can never be encoded in one
// order and decoded in another, and no field is read without its bound.
//
// Wire form: little-endian integers; a string or byte string is a u32
// length then the bytes; a list is a u32 count then its items; a bool is
// one byte 0 or 1; an optional is a bool then the value. A Decoder checks
// every length against the field's bound BEFORE it allocates, stops at the
// first violation (every later call is a no-op), and finish() fails unless
// the input was consumed exactly: a decoded value is either whole and
// within its bounds, or not produced at all.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/diagnostics.hpp"
#include "common/result.hpp"

namespace gh::ipc {

class Encoder {
 public:
  static constexpr bool kDecoding = false;

  void u8(uint8_t& v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t& v) { put(v, 4); }
  void u64(uint64_t& v) { put(v, 8); }
  void i64(int64_t& v) { put(static_cast<uint64_t>(v), 8); }
  void i32(int32_t& v) { put(static_cast<uint32_t>(v), 4); }
  void boolean(bool& v) { out_.push_back(v ? 1 : 0); }
  void f64(double& v) { put(std::bit_cast<uint64_t>(v), 8); }
  void str(std::string& s, size_t /*max*/) {
    put(s.size(), 4);
    out_.append(s);
  }
  // An enum stored as u32; `count` is one past its largest value.
  template <class E>
  void enumeration(E& e, uint32_t /*count*/) {
    put(static_cast<uint32_t>(e), 4);
  }
  template <class T, class F>
  void list(std::vector<T>& items, size_t /*max*/, F&& each) {
    put(items.size(), 4);
    for (auto& item : items) each(item);
  }
  template <class T, class F>
  void optional(std::optional<T>& o, F&& each) {
    bool has = o.has_value();
    boolean(has);
    if (has) each(*o);
  }
  bool ok() const { return true; }
  std::string take() { return std::move(out_); }

 private:
  void put(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

class Decoder {
 public:
  static constexpr bool kDecoding = true;

  explicit Decoder(std::string_view in) : in_(in) {}

  void u8(uint8_t& v) {
    uint64_t x = 0;
    if (get(x, 1)) v = static_cast<uint8_t>(x);
  }
  void u32(uint32_t& v) {
    uint64_t x = 0;
    if (get(x, 4)) v = static_cast<uint32_t>(x);
  }
  void u64(uint64_t& v) { get(v, 8); }
  void i64(int64_t& v) {
    uint64_t x = 0;
    if (get(x, 8)) v = static_cast<int64_t>(x);
  }
  void i32(int32_t& v) {
    uint64_t x = 0;
    if (get(x, 4)) v = static_cast<int32_t>(static_cast<uint32_t>(x));
  }
  void boolean(bool& v) {
    uint64_t x = 0;
    if (!get(x, 1)) return;
    if (x > 1) return fail("a boolean that is neither 0 nor 1");
    v = x == 1;
  }
  void f64(double& v) {
    uint64_t x = 0;
    if (get(x, 8)) v = std::bit_cast<double>(x);
  }
  void str(std::string& s, size_t max) {
    uint64_t n = 0;
    if (!get(n, 4)) return;
    if (n > max) return fail("a string of " + std::to_string(n) + " bytes where at most " + std::to_string(max) + " may be");
    if (in_.size() - pos_ < n) return fail("a string runs past the end of the message");
    s.assign(in_.substr(pos_, n));
    pos_ += n;
  }
  template <class E>
  void enumeration(E& e, uint32_t count) {
    uint64_t x = 0;
    if (!get(x, 4)) return;
    if (x >= count) return fail("an unknown value " + std::to_string(x) + " of an enumeration");
    e = static_cast<E>(x);
  }
  template <class T, class F>
  void list(std::vector<T>& items, size_t max, F&& each) {
    uint64_t n = 0;
    if (!get(n, 4)) return;
    if (n > max) return fail("a list of " + std::to_string(n) + " items where at most " + std::to_string(max) + " may be");
    // Every item takes at least one byte: a count the input cannot hold
    // is refused before anything is allocated for it.
    if (n > in_.size() - pos_) return fail("a list runs past the end of the message");
    items.clear();
    items.resize(n);
    for (auto& item : items) {
      if (!ok_) return;
      each(item);
    }
  }
  template <class T, class F>
  void optional(std::optional<T>& o, F&& each) {
    bool has = false;
    boolean(has);
    if (!ok_) return;
    if (!has) {
      o.reset();
      return;
    }
    o.emplace();
    each(*o);
  }

  // A check of meaning, made while decoding: it stops the decoder with `why`.
  void require(bool condition, const std::string& why) {
    if (ok_ && !condition) fail(why);
  }
  bool ok() const { return ok_; }
  // Succeeds only when everything decoded and nothing is left over.
  bool finish() {
    if (ok_ && pos_ != in_.size()) fail(std::to_string(in_.size() - pos_) + " bytes left over after the message");
    return ok_;
  }
  const std::string& error() const { return error_; }

 private:
  bool get(uint64_t& v, int bytes) {
    if (!ok_) return false;
    if (in_.size() - pos_ < static_cast<size_t>(bytes)) {
      fail("the message ends in the middle of a field");
      return false;
    }
    v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(in_[pos_ + static_cast<size_t>(i)])) << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return true;
  }
  void fail(std::string why) {
    if (!ok_) return;
    ok_ = false;
    error_ = std::move(why);
  }

  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

// Helpers for shapes many types share. They add no wire rule: a list of
// strings is a list whose items are strings, a pair is its two fields.
template <class C>
void strings(C& c, std::vector<std::string>& v, size_t max_items, size_t max_bytes) {
  c.list(v, max_items, [&](std::string& s) { c.str(s, max_bytes); });
}
// A line and column of a file, for messages only: two u32, decoded into the
// range a file of at most `max_bytes` can have (negative as 0).
template <class C>
void file_mark(C& c, Mark& m, size_t max_bytes) {
  uint32_t line = static_cast<uint32_t>(m.line > 0 ? m.line : 0), col = static_cast<uint32_t>(m.column > 0 ? m.column : 0);
  c.u32(line);
  c.u32(col);
  if constexpr (C::kDecoding) {
    const uint32_t cap = static_cast<uint32_t>(max_bytes);
    m.line = static_cast<int>(line < cap ? line : cap);
    m.column = static_cast<int>(col < cap ? col : cap);
  }
}
template <class C>
void string_pairs(C& c, std::vector<std::pair<std::string, std::string>>& v, size_t max_items, size_t max_first,
                  size_t max_second) {
  c.list(v, max_items, [&](std::pair<std::string, std::string>& kv) {
    c.str(kv.first, max_first);
    c.str(kv.second, max_second);
  });
}
// A check of meaning after a type's fields: `problem()` returns "" or what
// is wrong, and stops the decoder with it. It runs only when decoding, and
// only when everything before it decoded (so it sees whole values); the
// encoder writes what it is given.
template <class C, class F>
void check(C& c, F&& problem) {
  if constexpr (C::kDecoding) {
    if (!c.ok()) return;
    const std::string why = problem();
    c.require(why.empty(), why);
  }
}
inline bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// encode(v) / decode<T>(bytes) for any T with a `fields(Coder&, T&)`
// overload found by argument-dependent lookup or declared before the call.
// The encoder only reads through the references fields() hands it.
template <class T>
std::string encode(const T& value) {
  Encoder e;
  fields(e, const_cast<T&>(value));
  return e.take();
}

template <class T>
Result<T> decode(std::string_view bytes) {
  Decoder d(bytes);
  T value{};
  fields(d, value);
  if (!d.finish()) return err(d.error());
  return value;
}

}  // namespace gh::ipc
