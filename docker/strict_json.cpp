#include "docker/strict_json.hpp"

#include <cmath>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace gh::docker {

namespace {

using nlohmann::json;

std::string fold(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string printable(std::string_view key) {
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Builds the document while checking it, so the checks and the DOM come
// from one reading of the bytes.
class StrictSax {
 public:
  explicit StrictSax(size_t max_depth) : max_depth_(max_depth) {}

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const std::string& text) {
    // nlohmann reads 1e400 as infinity and would forward it as null; Go
    // refuses the number. Neither reading is the other's, so refuse.
    if (!std::isfinite(v)) return fail("json-syntax", "the number " + text + " is out of range");
    return put(json(v));
  }
  bool string(std::string& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t&) { return fail("json-syntax", "binary values are not JSON"); }

  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& k) {
    Frame& f = stack_.back();
    for (unsigned char c : k)
      if (c >= 0x80)
        return fail("json-non-ascii-key", "the key \"" + printable(k) +
                                              "\" is not ASCII; the daemon folds some non-ASCII letters to ASCII "
                                              "ones when it matches keys, so only ASCII keys are accepted");
    if (!f.exact.insert(k).second)
      return fail("json-duplicate-key", "the key \"" + printable(k) + "\" appears twice in one object; write it once");
    if (!f.folded.insert(fold(k)).second)
      return fail("json-case-collision", "the key \"" + printable(k) +
                                             "\" differs only in case from another key of the same object; the daemon "
                                             "reads both as one field, so write it once");
    f.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (!refusal_) refusal_ = refuse("json-syntax", std::string("the body is not valid JSON: ") + ex.what(), 400);
    return false;
  }

  std::optional<Refusal> refusal_;
  json root_;

 private:
  struct Frame {
    json* node;
    std::set<std::string> exact, folded;
    std::string key;
  };

  bool fail(std::string rule, std::string message) {
    if (!refusal_) refusal_ = refuse(std::move(rule), std::move(message), 400);
    return false;
  }

  // Pointers into the tree stay valid: a parent gains no new child while
  // one of its children is still open.
  json* put_slot(json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = stack_.back();
    if (f.node->is_array()) {
      f.node->push_back(std::move(v));
      return &f.node->back();
    }
    json& slot = (*f.node)[f.key];
    slot = std::move(v);
    return &slot;
  }

  bool put(json v) {
    put_slot(std::move(v));
    return true;
  }

  bool open(json v) {
    if (stack_.size() + 1 > max_depth_)
      return fail("json-depth", "the body nests objects and arrays deeper than " + std::to_string(max_depth_) + " levels");
    json* node = put_slot(std::move(v));
    stack_.push_back(Frame{node, {}, {}, {}});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  size_t max_depth_;
  std::vector<Frame> stack_;
};

}  // namespace

Checked<nlohmann::json> parse_strict(std::string_view body, size_t max_depth) {
  StrictSax sax(max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(body.begin(), body.end(), &sax);
  } catch (const json::exception& e) {
    return refuse("json-syntax", std::string("the body is not valid JSON: ") + e.what(), 400);
  }
  if (sax.refusal_) return *sax.refusal_;
  if (!ok) return refuse("json-syntax", "the body is not valid JSON", 400);
  return std::move(sax.root_);
}

std::string canonical(const nlohmann::json& j) { return j.dump(); }

Checked<Ok> known_keys(const nlohmann::json& object, std::span<const std::string_view> known, std::string_view where) {
  if (!object.is_object()) return Ok{};
  for (const auto& [k, v] : object.items()) {
    bool found = false;
    std::string_view near;
    for (std::string_view n : known) {
      if (n == k) found = true;
      else if (iequals_ascii(n, k)) near = n;
    }
    if (found) continue;
    std::string name = where.empty() ? printable(k) : std::string(where) + "." + printable(k);
    std::string msg = name + " is not a key the proxy knows; keys are matched exactly, case included";
    if (!near.empty()) msg += " (the key is spelt " + std::string(near) + ")";
    return refuse("unknown-key", std::move(msg));
  }
  return Ok{};
}

Checked<Ok> known_keys(const nlohmann::json& object, std::initializer_list<std::string_view> known,
                       std::string_view where) {
  return known_keys(object, std::span<const std::string_view>(known.begin(), known.size()), where);
}

bool json_unset(const nlohmann::json* v) {
  if (!v) return true;
  switch (v->type()) {
    case json::value_t::null: return true;
    case json::value_t::boolean: return !v->get<bool>();
    case json::value_t::number_integer: return v->get<json::number_integer_t>() == 0;
    case json::value_t::number_unsigned: return v->get<json::number_unsigned_t>() == 0;
    case json::value_t::number_float: return v->get<json::number_float_t>() == 0.0;
    case json::value_t::string: return v->get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return v->empty();
    case json::value_t::binary:
    case json::value_t::discarded: return false;
  }
  return false;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace gh::docker
