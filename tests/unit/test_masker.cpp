// The output masker. A secret must never reach a log in any of the forms
// tools print it in, whatever the chunking of the stream; and output that
// holds no secret must pass through unchanged and undelayed.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/secret_forms.hpp"
#include "worker/masker.hpp"

using gh::worker::Masker;
using gh::secret_forms;

namespace {

using Secrets = std::vector<std::pair<std::string, std::string>>;

// Expected forms computed independently (Python's base64, urllib.parse,
// json), not with the code under test.
const std::string kValue = "p@ss/w0rd+\xc3""\x9c""n\xc3""\xaf"" \"q\"\\\x01""\x0a"">?>!!";
const std::pair<const char*, std::string> kForms[] = {
    {"raw", "p@ss/w0rd+\xc3""\x9c""n\xc3""\xaf"" \"q\"\\\x01""\x0a"">?>!!"},
    {"base64", "cEBzcy93MHJkK8OcbsOvICJxIlwBCj4/PiEh"},
    {"base64url", "cEBzcy93MHJkK8OcbsOvICJxIlwBCj4_PiEh"},
    {"percent upper", "p%40ss%2Fw0rd%2B%C3%9Cn%C3%AF%20%22q%22%5C%01%0A%3E%3F%3E%21%21"},
    {"percent lower", "p%40ss%2fw0rd%2b%c3%9cn%c3%af%20%22q%22%5c%01%0a%3e%3f%3e%21%21"},
    {"form upper", "p%40ss%2Fw0rd%2B%C3%9Cn%C3%AF+%22q%22%5C%01%0A%3E%3F%3E%21%21"},
    {"form lower", "p%40ss%2fw0rd%2b%c3%9cn%c3%af+%22q%22%5c%01%0a%3e%3f%3e%21%21"},
    {"encodeURIComponent", "p%40ss%2Fw0rd%2B%C3%9Cn%C3%AF%20%22q%22%5C%01%0A%3E%3F%3E!!"},
    {"hex lower", "704073732f773072642bc39c6ec3af202271225c010a3e3f3e2121"},
    {"hex upper", "704073732F773072642BC39C6EC3AF202271225C010A3E3F3E2121"},
    {"json ascii", "p@ss/w0rd+\\u00dcn\\u00ef \\\"q\\\"\\\\\\u0001\\n>?>!!"},
    {"json raw utf8", "p@ss/w0rd+\xc3""\x9c""n\xc3""\xaf"" \\\"q\\\"\\\\\\u0001\\n>?>!!"},
    {"json ascii upper", "p@ss/w0rd+\\u00DCn\\u00EF \\\"q\\\"\\\\\\u0001\\n>?>!!"},
    {"json slash", "p@ss\\/w0rd+\xc3""\x9c""n\xc3""\xaf"" \\\"q\\\"\\\\\\u0001\\n>?>!!"},
    {"json go html-safe", "p@ss/w0rd+\xc3""\x9c""n\xc3""\xaf"" \\\"q\\\"\\\\\\u0001\\n\\u003e?\\u003e!!"},
};

std::string run(const Secrets& s, const std::vector<std::string>& chunks) {
  Masker m(s);
  std::string out;
  for (const auto& c : chunks) out += m.feed(c);
  return out + m.flush();
}

std::string run(const Secrets& s, const std::string& text) { return run(s, std::vector<std::string>{text}); }

// Leftmost-longest, non-overlapping, on the whole text at once: what the
// streaming masker must produce for any chunking.
std::string reference(const Secrets& s, const std::string& text) {
  std::vector<std::pair<std::string, std::string>> pats;  // form, name
  for (const auto& [name, value] : s)
    for (const auto& f : secret_forms(value)) {
      bool dup = false;
      for (const auto& p : pats) dup = dup || p.first == f;
      if (!dup) pats.emplace_back(f, name);
    }
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& p : pats)
      if (text.compare(i, p.first.size(), p.first) == 0 && (!best || p.first.size() > best->first.size())) best = &p;
    if (best) {
      out += "[masked:" + best->second + "]";
      i += best->first.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

// A deliberately plain base64 (3 bytes -> 4 characters, '=' padding), to
// build surrounding streams independently of the masker's encoder.
std::string b64(const std::string& in, bool url = false) {
  const std::string t = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                            : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    unsigned b0 = static_cast<unsigned char>(in[i]);
    unsigned b1 = i + 1 < in.size() ? static_cast<unsigned char>(in[i + 1]) : 0;
    unsigned b2 = i + 2 < in.size() ? static_cast<unsigned char>(in[i + 2]) : 0;
    unsigned n = (b0 << 16) | (b1 << 8) | b2;
    out += t[(n >> 18) & 63];
    out += t[(n >> 12) & 63];
    out += i + 1 < in.size() ? t[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? t[n & 63] : '=';
  }
  return out;
}

const Secrets kOne = {{"TOKEN", kValue}};

}  // namespace

TEST_CASE("every form of the secret is masked, and each table form is one the masker knows") {
  auto forms = secret_forms(kValue);
  for (const auto& [what, form] : kForms) {
    CAPTURE(what);
    CHECK(std::find(forms.begin(), forms.end(), form) != forms.end());
    CHECK(run(kOne, "before " + form + " after\n") == "before [masked:TOKEN] after\n");
  }
  // Forms are distinct and none is a short (over-matching) fragment.
  for (size_t i = 0; i < forms.size(); ++i) {
    CHECK(forms[i].size() >= 8);
    for (size_t j = i + 1; j < forms.size(); ++j) CHECK(forms[i] != forms[j]);
  }
}

TEST_CASE("base64 of the secret inside a longer base64 stream is masked at every alignment") {
  for (bool url : {false, true})
    for (const std::string before : {"", "a", "ab", "abc", "abcd", "{\"auth\":\""})
      for (const std::string after : {"", "z", "yz", "\"}"}) {
        const std::string whole = b64(before + kValue + after, url);
        // Characters wholly inside the secret's bits, as the masker defines them.
        const size_t first = (8 * before.size() + 5) / 6;
        const size_t end = 8 * (before.size() + kValue.size()) / 6;
        CAPTURE(whole);
        const std::string masked = run(kOne, "Authorization: Basic " + whole + "\n");
        CHECK(masked == "Authorization: Basic " + whole.substr(0, first) + "[masked:TOKEN]" + whole.substr(end) + "\n");
      }
}

TEST_CASE("a secret split at every byte position across two and three chunks is masked") {
  const std::string text = "log: " + kValue + " | " + std::string(kForms[1].second) + " | " + kForms[10].second +
                           kValue + " end";
  const std::string expected = "log: [masked:TOKEN] | [masked:TOKEN] | [masked:TOKEN][masked:TOKEN] end";
  REQUIRE(run(kOne, text) == expected);
  REQUIRE(reference(kOne, text) == expected);
  for (size_t i = 0; i <= text.size(); ++i) {
    CAPTURE(i);
    REQUIRE(run(kOne, {text.substr(0, i), text.substr(i)}) == expected);
  }
  const std::string short_text = "x" + kValue + kForms[3].second + "y";
  const std::string short_expected = "x[masked:TOKEN][masked:TOKEN]y";
  for (size_t i = 0; i <= short_text.size(); ++i)
    for (size_t j = i; j <= short_text.size(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      REQUIRE(run(kOne, {short_text.substr(0, i), short_text.substr(i, j - i), short_text.substr(j)}) == short_expected);
    }
}

TEST_CASE("one byte at a time") {
  const std::string text = "a" + kValue + "b" + kForms[8].second + "c";
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  CHECK(run(kOne, bytes) == "a[masked:TOKEN]b[masked:TOKEN]c");
}

TEST_CASE("a secret repeated back to back is masked each time") {
  const Secrets s = {{"K", "abcabcabc1"}};
  CHECK(run(s, "abcabcabc1abcabcabc1abcabcabc1") == "[masked:K][masked:K][masked:K]");
  CHECK(run(s, "abcabcabcabc1x") == "abc[masked:K]x");  // the match starts late: no partial overlap is lost
  const std::string text = "abcabcabc1abcabcabc1";
  for (size_t i = 0; i <= text.size(); ++i) CHECK(run(s, {text.substr(0, i), text.substr(i)}) == "[masked:K][masked:K]");
}

TEST_CASE("a secret that is a prefix of another: the longest wins, the short one alone is still masked") {
  const Secrets s = {{"SHORT", "abcdefgh12"}, {"LONG", "abcdefgh1234567"}};
  CHECK(run(s, "<abcdefgh1234567>") == "<[masked:LONG]>");
  CHECK(run(s, "<abcdefgh12>") == "<[masked:SHORT]>");
  CHECK(run(s, "<abcdefgh123456>") == "<[masked:SHORT]3456>");
  // Order of declaration does not matter.
  const Secrets r = {{"LONG", "abcdefgh1234567"}, {"SHORT", "abcdefgh12"}};
  CHECK(run(r, "<abcdefgh1234567>") == "<[masked:LONG]>");
  // A secret inside another that starts earlier: leftmost wins.
  const Secrets inner = {{"OUTER", "xxabcdefgh12yy"}, {"INNER", "abcdefgh12"}};
  CHECK(run(inner, "xxabcdefgh12yy") == "[masked:OUTER]");
  CHECK(run(inner, "xxabcdefgh12y!") == "xx[masked:INNER]y!");
  // Streaming: the short secret is complete but could still grow, so it is
  // held; flush() masks it.
  Masker m(s);
  CHECK(m.feed("go abcdefgh12") == "go ");
  CHECK(m.held() == 10);
  CHECK(m.flush() == "[masked:SHORT]");
  CHECK(m.held() == 0);
}

TEST_CASE("output without secrets passes through byte for byte, with NULs and invalid UTF-8") {
  const Secrets s = {{"A", "correct-horse-battery"}, {"B", "\xff\xfe\x00zz\x80secret"}};
  std::mt19937 rng(12345);
  std::string text;
  for (int i = 0; i < 20000; ++i) text += static_cast<char>(rng() & 0xff);
  text += std::string("\0\0\xc3\x28\xa0\xa1\xed\xa0\x80", 9);
  REQUIRE(reference(s, text) == text);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> chunks;
    for (size_t pos = 0; pos < text.size();) {
      size_t n = std::min<size_t>(rng() % 300, text.size() - pos);
      chunks.push_back(text.substr(pos, n));
      pos += n;
    }
    REQUIRE(run(s, chunks) == text);
  }
  CHECK(run({}, text) == text);
}

TEST_CASE("nothing is held back unless a secret's prefix is pending; flush emits the tail") {
  Masker m(kOne);
  CHECK(m.feed("hello world\n") == "hello world\n");
  CHECK(m.held() == 0);
  CHECK(m.feed("ppp") == "pp");  // the last 'p' may start the secret
  CHECK(m.held() == 1);
  // Only the real prefix of the secret is held, never more.
  CHECK(m.feed("xx" + kValue.substr(0, 5)) == "pxx");
  CHECK(m.held() == 5);
  CHECK(m.feed(kValue.substr(5)) == "[masked:TOKEN]");
  CHECK(m.held() == 0);
  CHECK(m.feed("tail " + kValue.substr(0, 7)) == "tail ");
  CHECK(m.flush() == kValue.substr(0, 7));  // end of stream: an incomplete prefix is not a secret
  CHECK(m.held() == 0);
  CHECK(m.max_hold() + 1 >= kForms[14].second.size());
  // Ordinary text with no secrets configured is never delayed.
  Masker none({});
  CHECK(none.feed("abc") == "abc");
  CHECK(none.flush().empty());
}

TEST_CASE("randomized: any chunking gives the same result as masking the whole text") {
  const Secrets s = {{"A", "tok_AAAAAAAA"}, {"B", "tok_AAAAAAAAB/=+"}, {"C", "\"quoted\\secret\""},
                     {"D", "aaaaaaaaaa"},   {"E", "xyxyxyxyxz"}};
  std::vector<std::string> pieces = {"tok_", "AAAA", "B/=+", "a", "xy", "z", "\"", "\\", " ", "\n", "\0", "\xff"};
  for (const auto& [name, v] : s)
    for (const auto& f : secret_forms(v)) pieces.push_back(f);
  std::mt19937 rng(99);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const auto& p = pieces[rng() % pieces.size()];
      text += rng() % 4 == 0 ? p.substr(0, rng() % (p.size() + 1)) : p;
    }
    const std::string expected = reference(s, text);
    std::vector<std::string> chunks;
    for (size_t pos = 0; pos < text.size();) {
      size_t len = std::min<size_t>(rng() % 12, text.size() - pos);
      chunks.push_back(text.substr(pos, len));
      pos += len;
    }
    CAPTURE(text);
    REQUIRE(run(s, chunks) == expected);
  }
}

TEST_CASE("short encoded forms are not patterns; the value itself always is") {
  for (const auto& f : secret_forms("abcdefgh")) CHECK((f.size() >= 8));
  auto f = secret_forms("abc");
  REQUIRE(f.size() == 1);  // the raw value; its hex (6) and base64 (4) are too short to mask safely
  CHECK(f[0] == "abc");
  CHECK(secret_forms("").empty());
}

// Not part of the suite (timing); run with: test_masker -tc='*throughput*' --no-skip
TEST_CASE("masker throughput: 64 MiB through 10 secrets" * doctest::skip()) {
  Secrets s;
  for (int i = 0; i < 10; ++i) s.emplace_back("S" + std::to_string(i), "ghp_" + std::string(36, static_cast<char>('a' + i)) + "Xy/+");
  auto t0 = std::chrono::steady_clock::now();
  Masker m(s);
  auto t1 = std::chrono::steady_clock::now();
  std::string chunk;
  std::mt19937 rng(7);
  const char* words[] = {"npm ", "WARN ", "deprecated ", "ghp_aaaa", "build/", "src/main.cpp ", "0x7f3a ", "\n",
                         "Compiling ", "aaaaaaaaaaaaaa", "[=====>     ] 45%\r", "{\"a\":\"b\"} "};
  while (chunk.size() < (64u << 10)) chunk += words[rng() % 12];
  chunk.resize(64u << 10);
  chunk += s[3].second;  // one real secret per chunk
  size_t total = 0, out = 0;
  auto t2 = std::chrono::steady_clock::now();
  while (total < (64u << 20)) {
    out += m.feed(chunk).size();
    total += chunk.size();
  }
  out += m.flush().size();
  auto t3 = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(t3 - t2).count();
  MESSAGE("patterns " << m.pattern_count() << ", build " << std::chrono::duration<double, std::milli>(t1 - t0).count()
                      << " ms, " << static_cast<double>(total) / 1e6 / secs << " MB/s");
  CHECK(out < total);
}
