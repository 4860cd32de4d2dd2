// The encoded forms of a secret value (secret_forms.hpp).
#include "common/secret_forms.hpp"

#include <algorithm>
#include <cstdint>

namespace gh {

namespace {

// Shorter encoded forms would match innocent text too often; they carry at
// most a few bytes of the secret.
constexpr size_t kMinFormBytes = 8;

std::string base64(std::string_view in, bool url) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];  // the partial last character, no '='
  return out;
}

// The characters of base64(X + v), |X| = skip, that depend on v's bytes
// alone: what the secret looks like wherever it sits in a longer stream.
std::string base64_aligned(std::string_view v, size_t skip, bool url) {
  std::string padded(skip, '\0');
  padded.append(v);
  std::string enc = base64(padded, url);
  size_t first = (8 * skip + 5) / 6;         // first character wholly inside v
  size_t end = 8 * (skip + v.size()) / 6;    // one past the last such character
  if (end <= first) return {};
  return enc.substr(first, end - first);
}

std::string percent(std::string_view v, bool upper, bool form, std::string_view also_unreserved) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : v) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || also_unreserved.find(static_cast<char>(c)) != std::string_view::npos;
    if (unreserved) out += static_cast<char>(c);
    else if (form && c == ' ') out += '+';
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string hex(std::string_view v, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(v.size() * 2);
  for (unsigned char c : v) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// Decodes UTF-8 strictly; false on anything malformed (then no \uXXXX form
// exists: encoders either refuse or substitute U+FFFD).
bool utf8_decode(std::string_view v, std::vector<uint32_t>& cps) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < v.size();) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) n = 0, cp = c;
    else if ((c >> 5) == 6) n = 1, cp = c & 0x1f;
    else if ((c >> 4) == 14) n = 2, cp = c & 0x0f;
    else if ((c >> 3) == 30) n = 3, cp = c & 0x07;
    else return false;
    if (n >= v.size() - i) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(v[i + k]);
      if ((cc >> 6) != 2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    cps.push_back(cp);
    i += n + 1;
  }
  return true;
}

struct JsonStyle {
  bool escape_slash;  // "\/" (PHP, some Java encoders)
  bool ascii_only;    // non-ASCII as \uXXXX (Python's default)
  bool upper_hex;     // \u001F rather than \u001f
  bool html_safe;     // < > & as \u003c \u003e \u0026 (Go's default)
};

void json_unicode(std::string& out, uint32_t u, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += digits[(u >> shift) & 15];
}

void json_code_point(std::string& out, uint32_t cp, const JsonStyle& s) {
  switch (cp) {
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    case '\n': out += "\\n"; return;
    case '\t': out += "\\t"; return;
    case '\r': out += "\\r"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    default: break;
  }
  if (cp == '/' && s.escape_slash) out += "\\/";
  else if (cp < 0x20 || (s.html_safe && (cp == '<' || cp == '>' || cp == '&'))) json_unicode(out, cp, s.upper_hex);
  else if (cp < 0x80) out += static_cast<char>(cp);
  else if (cp < 0x10000) json_unicode(out, cp, s.upper_hex);
  else {
    json_unicode(out, 0xd800 + ((cp - 0x10000) >> 10), s.upper_hex);
    json_unicode(out, 0xdc00 + ((cp - 0x10000) & 0x3ff), s.upper_hex);
  }
}

std::string json(std::string_view v, const JsonStyle& s, const std::vector<uint32_t>* cps) {
  std::string out;
  if (s.ascii_only) {
    for (uint32_t cp : *cps) json_code_point(out, cp, s);
  } else {
    // Bytes >= 0x80 pass through as they are (valid or not).
    for (unsigned char c : v) {
      if (c >= 0x80) out += static_cast<char>(c);
      else json_code_point(out, c, s);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> secret_forms(std::string_view value) {
  std::vector<std::string> forms;
  if (value.empty()) return forms;
  auto add = [&](std::string f) {
    if (f.size() < kMinFormBytes && f != value) return;
    if (f.empty() || std::find(forms.begin(), forms.end(), f) != forms.end()) return;
    forms.push_back(std::move(f));
  };
  add(std::string(value));
  for (bool url : {false, true})
    for (size_t skip = 0; skip < 3; ++skip) add(base64_aligned(value, skip, url));
  for (bool upper : {true, false}) {
    add(percent(value, upper, false, ""));
    add(percent(value, upper, true, ""));
    add(percent(value, upper, false, "!*'()"));  // JavaScript's encodeURIComponent
    add(hex(value, upper));
  }
  std::vector<uint32_t> cps;
  const bool valid_utf8 = utf8_decode(value, cps);
  for (int bits = 0; bits < 16; ++bits) {
    JsonStyle s{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0};
    if (s.ascii_only && !valid_utf8) continue;
    add(json(value, s, &cps));
  }
  return forms;
}

size_t mask_pattern_bytes(std::string_view value) {
  size_t total = 0;
  for (const auto& f : secret_forms(value)) total += f.size();
  return total;
}

}  // namespace gh
