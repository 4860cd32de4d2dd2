// Conditional sections in text, as CircleCI's templating has them beside
// `<< name >>`: `<<# name >>TEXT<</ name >>` keeps TEXT when the value is
// true, `<<^ name >>TEXT<</ name >>` when it is false (real configs name
// matrix jobs `e2e<<# matrix.ve >>-ve<</ matrix.ve >>`). Used for matrix
// values (workflow.cpp) and parameters (config_subst.cpp), each with its own
// lookup; sections do not nest.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace gh::job {

struct SectionResult {
  std::string text;
  std::string error;  // non-empty: what is wrong (an unclosed section, an unknown name)
};

// truth(name) answers whether the value `name` names is true, or nullopt
// when there is no such value (then that is the error).
inline SectionResult resolve_sections(const std::string& s,
                                      const std::function<std::optional<bool>(const std::string&)>& truth) {
  SectionResult r;
  size_t from = 0;
  for (;;) {
    size_t open = s.find("<<", from);
    while (open != std::string::npos && !(open + 2 < s.size() && (s[open + 2] == '#' || s[open + 2] == '^')))
      open = s.find("<<", open + 2);
    if (open == std::string::npos) break;
    const size_t close = s.find(">>", open);
    if (close == std::string::npos) break;
    std::string name = s.substr(open + 3, close - open - 3);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    const size_t end = s.find("<</", close);
    const size_t end_close = end == std::string::npos ? end : s.find(">>", end);
    if (end_close == std::string::npos) {
      r.error = "the section `" + s.substr(open, close + 2 - open) + "` is not closed with `<</ " + name + " >>`";
      return r;
    }
    auto t = truth(name);
    if (!t) {
      r.error = "the section names `" + name + "`, which has no value here";
      return r;
    }
    r.text.append(s, from, open - from);
    if (*t == (s[open + 2] == '#')) r.text.append(s, close + 2, end - close - 2);
    from = end_close + 2;
  }
  r.text.append(s, from, std::string::npos);
  return r;
}

// CircleCI's truthiness of a scalar's text: false, no, off, 0, null, NaN
// and empty text are false (the words only unquoted).
inline bool truthy_text(std::string t, bool plain) {
  for (char& c : t) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (t.empty()) return false;
  return !(plain && (t == "false" || t == "no" || t == "off" || t == "0" || t == "null" || t == "~" || t == ".nan"));
}

}  // namespace gh::job
