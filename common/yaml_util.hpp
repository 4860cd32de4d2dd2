// Strict YAML for hostile input (job files come from the repository being
// built; policy files from operators who deserve exact errors).
//
// yaml-cpp alone is too trusting for that: it keeps both copies of a
// duplicated key and silently answers with one, expands aliases without a
// budget (an alias bomb costs nothing to parse and forever to walk), accepts
// NUL bytes and broken UTF-8, and explains a tab in the indentation as
// "illegal map value". load() puts a guard in front of it: a byte scan of the
// raw text, then an event pass that checks structure before any tree is
// walked. After load() succeeds, every walk of the tree is bounded by
// kMaxNodes however it follows aliases.
//
// The getters below never throw: a wrong type or value becomes a diagnostic at
// the node's line:col saying what is allowed there, and the caller goes on to
// collect the rest.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/diagnostics.hpp"

namespace gh::yaml {

inline constexpr int kMaxDepth = 64;              // nested mappings/lists, aliases followed
// `*name` uses in one document. Real configs use hundreds (electron's has
// over a hundred); what makes aliases dangerous is their expansion, which
// kMaxNodes bounds.
inline constexpr size_t kMaxAliases = 5000;
inline constexpr uint64_t kMaxNodes = 1'000'000;  // nodes after expanding every alias

// yaml-cpp marks are 0-based (and -1 when unknown); ours are 1-based, 0 unknown.
Mark to_mark(const YAML::Mark& m);
// The 1-based line:col (bytes) of a byte offset in text.
Mark mark_at_offset(const std::string& text, size_t offset);

// Reads a regular file of at most max_bytes (a FIFO or a device is refused
// without blocking on it). Errors go to d at line 0, naming the file.
std::optional<std::string> read_file_limited(const std::string& path, size_t max_bytes, const std::string& what,
                                             Diagnostics& d);

// The text for Diagnostics to show: CRLF line ends as LF, so a line from a
// CRLF file is not shown with a stray `?` (its columns do not change).
std::string for_display(const std::string& text);

// Byte-level checks on the raw text: NUL and other control characters,
// invalid UTF-8, lone carriage returns, tabs used for indentation. Returns
// false when parsing must not go on (the errors are in d).
bool check_text(const std::string& text, Diagnostics& d);

// check_text, then the structural guard (syntax, one document, depth, alias
// count and expansion, duplicate keys), then the tree. nullopt when the text
// cannot be walked safely; after duplicate keys (reported) the tree is still
// returned so the caller can report the rest.
// anchor_lines, when given, receives the line of every node that defines an
// anchor (`&name`): CircleCI ignores unknown top-level keys, and configs use
// them to hold anchors, so the job parser accepts those and only those.
std::optional<YAML::Node> load(const std::string& text, Diagnostics& d, std::vector<int>* anchor_lines = nullptr);

// True when s is well-formed UTF-8 (no overlongs, surrogates or code points
// past U+10FFFF); otherwise false and the offset of the first bad byte.
bool valid_utf8(std::string_view s, size_t* bad_offset = nullptr);

// s with control characters (C0, DEL, C1) and invalid UTF-8 shown as `?`:
// names from the file that messages repeat must not reach the operator's
// terminal as escape sequences (a quoted key can hold "\e[2J").
std::string printable(std::string_view s);

// "a mapping", "a list", "nothing (null)", "`text`" (printable, cut at 40
// bytes), for messages.
std::string describe(const YAML::Node& n);

// One key of a mapping, with merge keys applied.
struct Entry {
  std::string key;
  YAML::Node value;
  Mark mark;  // where the key is written (inside the anchor, for merged keys)
};

// The entries of a mapping in file order, with YAML 1.1 merge keys
// (`<<: *defaults`, `<<: [*a, *b]`) applied as CircleCI applies them: keys
// written in the mapping win over merged ones, earlier merged maps over later
// ones. yaml-cpp 0.7 does not do this itself. Keys that are not plain
// strings are reported and left out.
std::vector<Entry> entries(const YAML::Node& map, Diagnostics& d);

// "a, b, c"
std::string join(std::initializer_list<std::string_view> words);
std::string join(const std::vector<std::string>& words);

// Reports each entry whose key is not in `allowed`, naming the place
// ("in job `build`") and the allowed keys. Returns true when all are known.
bool check_keys(const std::vector<Entry>& es, std::initializer_list<std::string_view> allowed,
                const std::string& where, Diagnostics& d);

// yaml-cpp marks an empty value (`key:` and nothing) at the next token,
// often on the next line; callers pass the key's mark as `if_null` so the
// error points at the key instead.
bool expect_map(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null = {});
bool expect_list(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null = {});

enum class Text {
  SingleLine,  // names, paths: no control characters at all
  MultiLine,   // commands, values: newlines and tabs allowed, NUL never
};

// A scalar as a string. Null, lists and mappings are type errors; NUL bytes
// (reachable through "\0" escapes), invalid UTF-8 and, for SingleLine,
// control characters are value errors.
std::optional<std::string> get_string(const YAML::Node& n, const std::string& what, Diagnostics& d,
                                      Text kind = Text::SingleLine, Mark if_null = {});
// true/false (also yes/no/on/off, as YAML 1.1 and CircleCI read them);
// plain scalars only: a quoted "true" is a string.
std::optional<bool> get_bool(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null = {});
// The text of a plain boolean (true/yes/on, false/no/off, any case), or
// nullopt for any other text.
std::optional<bool> bool_word(std::string text);
// A plain decimal whole number in [min, max].
std::optional<uint64_t> get_uint(const YAML::Node& n, const std::string& what, uint64_t min, uint64_t max,
                                 Diagnostics& d, Mark if_null = {});
// A plain decimal number (digits, optional fraction) in [min, max].
std::optional<double> get_number(const YAML::Node& n, const std::string& what, double min, double max,
                                 Diagnostics& d, Mark if_null = {});

// The same, for a mapping entry: named after its key, null values marked at the key.
inline std::string quoted(const std::string& key) { return "`" + key + "`"; }
inline bool expect_map(const Entry& e, Diagnostics& d) { return expect_map(e.value, quoted(e.key), d, e.mark); }
inline bool expect_list(const Entry& e, Diagnostics& d) { return expect_list(e.value, quoted(e.key), d, e.mark); }
inline std::optional<std::string> get_string(const Entry& e, Diagnostics& d, Text kind = Text::SingleLine) {
  return get_string(e.value, quoted(e.key), d, kind, e.mark);
}
inline std::optional<bool> get_bool(const Entry& e, Diagnostics& d) { return get_bool(e.value, quoted(e.key), d, e.mark); }
inline std::optional<uint64_t> get_uint(const Entry& e, uint64_t min, uint64_t max, Diagnostics& d) {
  return get_uint(e.value, quoted(e.key), min, max, d, e.mark);
}
inline std::optional<double> get_number(const Entry& e, double min, double max, Diagnostics& d) {
  return get_number(e.value, quoted(e.key), min, max, d, e.mark);
}

// Where a value starts: its own mark, or `if_null` for an empty value.
Mark value_mark(const YAML::Node& n, Mark if_null = {});

}  // namespace gh::yaml
