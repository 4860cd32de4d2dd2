#include "common/yaml_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <cstdio>
#include <sstream>
#include <unordered_set>

namespace gh::yaml {

Mark to_mark(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

Mark mark_at_offset(const std::string& text, size_t offset) {
  Mark m{1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 1;
    } else {
      ++m.column;
    }
  }
  return m;
}

std::optional<std::string> read_file_limited(const std::string& path, size_t max_bytes, const std::string& what,
                                             Diagnostics& d) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    d.error({}, "cannot open the " + what + ": " + std::strerror(errno), "");
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    d.error({}, "the " + what + " is not a regular file", "a regular file");
    return std::nullopt;
  }
  const std::string limit = std::to_string(max_bytes / 1024) + " KiB";
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    d.error({}, "the " + what + " is " + std::to_string(st.st_size) + " bytes, more than the limit of " + limit,
            "files of at most " + limit);
    return std::nullopt;
  }
  // The size may change under us: read until EOF or one byte past the
  // limit. The buffer grows with what arrives (zeroing a limit-sized buffer
  // up front cost more than parsing a small job).
  std::string text;
  size_t got = 0;
  char chunk[65536];
  while (got <= max_bytes) {
    const ssize_t n = ::read(fd, chunk, std::min(sizeof chunk, max_bytes + 1 - got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      d.error({}, "cannot read the " + what + ": " + std::strerror(e), "");
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got > max_bytes) {
    d.error({}, "the " + what + " is more than the limit of " + limit, "files of at most " + limit);
    return std::nullopt;
  }
  return text;
}

std::string for_display(const std::string& text) {
  if (text.find("\r\n") == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out += text[i];
  return out;
}

bool valid_utf8(std::string_view s, size_t* bad_offset) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    if (i + len > s.size()) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        if (bad_offset) *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

// `key: |`, `- >-`, `key: &a |2`: the line opens a block scalar, whose
// more-indented lines are text where a tab is just a character.
bool opens_block_scalar(std::string_view line) {
  // Drop a trailing comment (a `#` after whitespace).
  for (size_t i = 1; i < line.size(); ++i)
    if (line[i] == '#' && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
      line = line.substr(0, i);
      break;
    }
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
  const size_t sp = line.find_last_of(" \t");
  std::string_view tok = sp == std::string_view::npos ? line : line.substr(sp + 1);
  if (tok.empty() || (tok[0] != '|' && tok[0] != '>')) return false;
  for (char c : tok.substr(1))
    if (!(c == '-' || c == '+' || (c >= '1' && c <= '9'))) return false;
  if (sp == std::string_view::npos) return true;
  std::string_view before = line.substr(0, sp);
  while (!before.empty() && (before.back() == ' ' || before.back() == '\t')) before.remove_suffix(1);
  const size_t sp2 = before.find_last_of(" \t");
  const std::string_view prev = sp2 == std::string_view::npos ? before : before.substr(sp2 + 1);
  return prev.empty() || prev.back() == ':' || prev == "-" || prev == "---" || prev[0] == '&' || prev[0] == '!';
}

size_t leading_spaces(std::string_view line) {
  size_t n = 0;
  while (n < line.size() && line[n] == ' ') ++n;
  return n;
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// YAML indents with spaces only. yaml-cpp does refuse tabs, but with
// "illegal map value" at some later column; this says what is wrong.
bool check_tabs(const std::string& text, Diagnostics& d) {
  int reported = 0;
  int more = 0;
  bool in_block = false;
  size_t block_parent = 0;
  std::optional<size_t> block_indent;
  size_t start = 0;
  for (int lineno = 1; start <= text.size(); ++lineno) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;

    if (in_block) {
      if (blank(line)) continue;
      const size_t n = leading_spaces(line);
      if (!block_indent) {
        if (n > block_parent) {
          block_indent = n;
          continue;
        }
      } else if (n >= *block_indent) {
        continue;
      }
      in_block = false;
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first != std::string_view::npos && line[first] != '#' && line[first] != '\r') {
      const size_t tab = line.substr(0, first).find('\t');
      if (tab != std::string_view::npos) {
        if (reported < 5) {
          d.error({lineno, static_cast<int>(tab) + 1}, "tab character used for indentation",
                  "spaces for indentation (YAML does not allow tabs there)");
          ++reported;
        } else {
          ++more;
        }
      }
    }
    if (opens_block_scalar(line)) {
      in_block = true;
      block_parent = leading_spaces(line);
      block_indent.reset();
    }
    if (end == text.size()) break;
  }
  if (more > 0)
    d.error({}, "tabs used for indentation on " + std::to_string(more) + " more line(s)",
            "spaces for indentation");
  return reported == 0;
}

}  // namespace

bool check_text(const std::string& text, Diagnostics& d) {
  size_t bad = 0;
  if (!valid_utf8(text, &bad)) {
    d.error(mark_at_offset(text, bad),
            "invalid UTF-8 (byte " + hex_byte(static_cast<unsigned char>(text[bad])) + ")",
            "UTF-8 text");
    return false;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t') continue;
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') continue;
      d.error(mark_at_offset(text, i), "carriage return without a newline after it",
              "lines ending in \\n or \\r\\n");
      return false;
    }
    if (c == 0) {
      d.error(mark_at_offset(text, i), "NUL byte in the file", "text without NUL bytes");
      return false;
    }
    if (c < 0x20 || c == 0x7F) {
      d.error(mark_at_offset(text, i), "control character " + hex_byte(c) + " in the file",
              "printable text, tabs and newlines (write control characters as escapes in a double-quoted string)");
      return false;
    }
    // C1 controls (U+0080..U+009F): some terminals act on them, and yaml-cpp
    // counts U+0085 as a line break where we would not.
    if (c == 0xC2 && i + 1 < text.size()) {
      const auto c2 = static_cast<unsigned char>(text[i + 1]);
      if (c2 >= 0x80 && c2 <= 0x9F) {
        d.error(mark_at_offset(text, i), "control character U+00" + hex_byte(c2).substr(2) + " in the file",
                "printable text, tabs and newlines");
        return false;
      }
    }
  }
  return check_tabs(text, d);
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Undefined: return "nothing";
    case YAML::NodeType::Scalar: break;
  }
  const std::string& s = n.Scalar();
  // Cut at a character boundary so the cut cannot make invalid UTF-8.
  size_t cut = s.size();
  if (cut > 40) {
    cut = 40;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  }
  return "`" + printable(std::string_view(s).substr(0, cut)) + (cut < s.size() ? "..." : "") + "`";
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (c < 0x20 || c == 0x7F) ? '?' : static_cast<char>(c);
      ++i;
      continue;
    }
    const size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    const bool c1 = c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F;
    if (len == 0 || i + len > s.size() || c1 || !valid_utf8(s.substr(i, len))) {
      out += '?';
      i += c1 ? 2 : 1;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

Mark value_mark(const YAML::Node& n, Mark if_null) {
  if (n.Type() == YAML::NodeType::Null || n.Type() == YAML::NodeType::Undefined)
    if (if_null.line > 0) return if_null;
  return to_mark(n.Mark());
}

namespace {

void merged_entries(const YAML::Node& map, Diagnostics& d, int depth, std::vector<Entry>& out,
                    std::unordered_set<std::string>& seen) {
  // Explicit keys first decide what merges may not override.
  std::vector<Entry> own;
  std::vector<YAML::Node> merges;
  std::vector<size_t> merge_pos;  // where in `own` each merge is written
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node k = it->first;
    if (k.Type() != YAML::NodeType::Scalar) {
      d.error(to_mark(k.Mark()), "a key here must be a plain string, found " + describe(k), "string keys");
      continue;
    }
    if (k.Scalar() == "<<" && k.Tag() == "?") {
      merges.push_back(it->second);
      merge_pos.push_back(own.size());
      continue;
    }
    own.push_back({k.Scalar(), it->second, to_mark(k.Mark())});
  }
  for (const auto& e : own) seen.insert(e.key);

  auto merge_one = [&](const YAML::Node& src, std::vector<Entry>& into) {
    if (src.Type() != YAML::NodeType::Map) {
      d.error(to_mark(src.Mark()), "a merge key `<<` takes a mapping or a list of mappings, found " + describe(src),
              "`<<: *anchor` or `<<: [*a, *b]`");
      return;
    }
    if (depth >= kMaxDepth) {
      d.error(to_mark(src.Mark()), "merge keys `<<` nested too deeply", "");
      return;
    }
    std::vector<Entry> sub;
    std::unordered_set<std::string> sub_seen;
    merged_entries(src, d, depth + 1, sub, sub_seen);
    for (auto& e : sub)
      if (seen.insert(e.key).second) into.push_back(std::move(e));
  };

  size_t next_merge = 0;
  for (size_t i = 0; i <= own.size(); ++i) {
    while (next_merge < merges.size() && merge_pos[next_merge] == i) {
      const YAML::Node& m = merges[next_merge++];
      if (m.Type() == YAML::NodeType::Sequence) {
        for (const auto& item : m) merge_one(item, out);
      } else {
        merge_one(m, out);
      }
    }
    if (i < own.size()) out.push_back(own[i]);
  }
}

}  // namespace

std::vector<Entry> entries(const YAML::Node& map, Diagnostics& d) {
  std::vector<Entry> out;
  if (map.Type() != YAML::NodeType::Map) return out;
  std::unordered_set<std::string> seen;
  merged_entries(map, d, 0, out, seen);
  return out;
}

std::string join(std::initializer_list<std::string_view> words) {
  std::string s;
  for (auto w : words) {
    if (!s.empty()) s += ", ";
    s += w;
  }
  return s;
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) {
    if (!s.empty()) s += ", ";
    s += w;
  }
  return s;
}

bool check_keys(const std::vector<Entry>& es, std::initializer_list<std::string_view> allowed,
                const std::string& where, Diagnostics& d) {
  bool ok = true;
  for (const auto& e : es) {
    if (std::find(allowed.begin(), allowed.end(), std::string_view(e.key)) != allowed.end()) continue;
    YAML::Node k(e.key);
    d.error(e.mark, "unknown key " + describe(k) + " " + where, join(allowed));
    ok = false;
  }
  return ok;
}

bool expect_map(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null) {
  if (n.Type() == YAML::NodeType::Map) return true;
  d.error(value_mark(n, if_null), what + " must be a mapping (key: value lines), found " + describe(n), "a mapping");
  return false;
}

bool expect_list(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null) {
  if (n.Type() == YAML::NodeType::Sequence) return true;
  d.error(value_mark(n, if_null), what + " must be a list (`- item` lines), found " + describe(n), "a list");
  return false;
}

std::optional<std::string> get_string(const YAML::Node& n, const std::string& what, Diagnostics& d, Text kind,
                                      Mark if_null) {
  if (n.Type() != YAML::NodeType::Scalar) {
    d.error(value_mark(n, if_null), what + " must be a string, found " + describe(n), "a string");
    return std::nullopt;
  }
  const std::string& s = n.Scalar();
  size_t bad = 0;
  if (!valid_utf8(s, &bad)) {
    d.error(to_mark(n.Mark()), what + " is not valid UTF-8", "UTF-8 text");
    return std::nullopt;
  }
  for (unsigned char c : s) {
    if (c == 0) {
      d.error(to_mark(n.Mark()), what + " contains a NUL character", "text without NUL");
      return std::nullopt;
    }
    if ((c < 0x20 || c == 0x7F) && (kind == Text::SingleLine || (c != '\n' && c != '\t' && c != '\r' && c != 0x1B))) {
      d.error(to_mark(n.Mark()), what + " contains the control character " + hex_byte(c),
              kind == Text::SingleLine ? "one line of printable text" : "printable text, tabs and newlines");
      return std::nullopt;
    }
  }
  return s;
}

std::optional<bool> bool_word(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (v == "true" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "no" || v == "off") return false;
  return std::nullopt;
}

namespace {

bool quoted_scalar(const YAML::Node& n) { return n.Type() == YAML::NodeType::Scalar && n.Tag() != "?"; }

// "the quoted string \"2048\"": what a value in quotes is, named as such so
// that the message says what to change (the quotes, not the number).
std::string quoted_string(const YAML::Node& n) { return "the quoted string \"" + printable(n.Scalar()) + "\""; }

// What is wrong with a plain scalar that is almost a whole number: a sign,
// a leading zero (YAML 1.1 readers take `0512` as octal 330). "" otherwise.
std::string number_shape_problem(const std::string& s) {
  if (s.size() > 1 && s[0] == '-' && std::all_of(s.begin() + 1, s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; }))
    return "is negative (" + s + ")";
  if (s.size() > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9')
    return "has a leading zero (" + s + "), which YAML 1.1 readers take as an octal number; write it without the zero";
  return {};
}

}  // namespace

std::optional<bool> get_bool(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null) {
  if (n.Type() == YAML::NodeType::Scalar && n.Tag() == "?")
    if (auto b = bool_word(n.Scalar())) return b;
  if (quoted_scalar(n) && bool_word(n.Scalar())) {
    d.error(value_mark(n, if_null), what + " must be true or false, found " + quoted_string(n) +
            ": a quoted value is a string; drop the quotes", "true, false (unquoted)");
    return std::nullopt;
  }
  d.error(value_mark(n, if_null), what + " must be true or false, found " + describe(n), "true, false");
  return std::nullopt;
}

std::optional<uint64_t> get_uint(const YAML::Node& n, const std::string& what, uint64_t min, uint64_t max,
                                 Diagnostics& d, Mark if_null) {
  const std::string range = std::to_string(min) + " to " + std::to_string(max);
  if (n.Type() == YAML::NodeType::Scalar && n.Tag() == "?") {
    const std::string& s = n.Scalar();
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && (s.size() == 1 || s[0] != '0')) {
      if (ec == std::errc() && p == s.data() + s.size() && v >= min && v <= max) return v;
      d.error(to_mark(n.Mark()), what + " is out of range: it must be from " + range + ", found " + s, range);
      return std::nullopt;
    }
    if (auto why = number_shape_problem(s); !why.empty()) {
      d.error(to_mark(n.Mark()), what + " " + why, range);
      return std::nullopt;
    }
  }
  if (quoted_scalar(n) && !n.Scalar().empty() &&
      std::all_of(n.Scalar().begin(), n.Scalar().end(), [](char c) { return c >= '0' && c <= '9'; })) {
    d.error(value_mark(n, if_null), what + " must be a whole number, found " + quoted_string(n) +
            ": a quoted value is a string; drop the quotes", range + " (unquoted)");
    return std::nullopt;
  }
  d.error(value_mark(n, if_null), what + " must be a whole number, found " + describe(n), range);
  return std::nullopt;
}

std::optional<double> get_number(const YAML::Node& n, const std::string& what, double min, double max,
                                 Diagnostics& d, Mark if_null) {
  std::ostringstream rs;
  rs << min << " to " << max;
  const std::string range = rs.str();
  if (n.Type() == YAML::NodeType::Scalar && n.Tag() == "?") {
    const std::string& s = n.Scalar();
    // Digits with an optional fraction: no signs, exponents, inf or nan.
    const size_t dot = s.find('.');
    const std::string_view ip = std::string_view(s).substr(0, dot);
    const std::string_view fp = dot == std::string::npos ? std::string_view() : std::string_view(s).substr(dot + 1);
    auto all_digits = [](std::string_view t) {
      return std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    double v = 0;
    const bool shaped = !ip.empty() && all_digits(ip) && all_digits(fp) && (dot == std::string::npos || !fp.empty());
    if (shaped && (ip.size() == 1 || ip[0] != '0')) {
      if (ip.size() <= 15 && std::from_chars(s.data(), s.data() + s.size(), v).ec == std::errc() && v >= min && v <= max)
        return v;
      d.error(to_mark(n.Mark()), what + " is out of range: it must be from " + range + ", found " + s, range);
      return std::nullopt;
    }
    if (auto why = number_shape_problem(s); !why.empty()) {
      d.error(to_mark(n.Mark()), what + " " + why, range);
      return std::nullopt;
    }
  }
  if (quoted_scalar(n) && !n.Scalar().empty() && n.Scalar().find_first_not_of("0123456789.") == std::string::npos) {
    d.error(value_mark(n, if_null), what + " must be a number, found " + quoted_string(n) +
            ": a quoted value is a string; drop the quotes", range + " (unquoted)");
    return std::nullopt;
  }
  d.error(value_mark(n, if_null), what + " must be a number, found " + describe(n), range);
  return std::nullopt;
}

}  // namespace gh::yaml
