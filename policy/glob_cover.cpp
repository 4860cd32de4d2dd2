// Glob containment (glob_cover.hpp).
//
// covers(i, j): the outer pattern from token i matches every string the
// inner pattern from token j matches. An outer `**` may take any inner
// token; an outer `*` any inner token that cannot hold `/` (a literal other
// than `/`, `?`, `*`); `?` one such token of exactly one character; a
// literal only the same literal. Each step is sound, so a `true` is a
// proof; memoised, so |outer| x |inner| steps at most.
#include "policy/glob_cover.hpp"

#include <algorithm>
#include <cstdint>

namespace gh::policy {

namespace {

enum class T : uint8_t { Lit, One, Star, Globstar };
struct Tok {
  T kind;
  char c;
};

std::vector<Tok> tokens(const std::string& p) {
  std::vector<Tok> t;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '*') {
      bool globstar = false;
      while (i + 1 < p.size() && p[i + 1] == '*') {
        globstar = true;
        ++i;
      }
      t.push_back({globstar ? T::Globstar : T::Star, 0});
    } else if (p[i] == '?') {
      t.push_back({T::One, 0});
    } else {
      t.push_back({T::Lit, p[i]});
    }
  }
  return t;
}

bool slashless(const Tok& t) { return t.kind == T::One || t.kind == T::Star || (t.kind == T::Lit && t.c != '/'); }

struct Cover {
  const std::vector<Tok>& a;
  const std::vector<Tok>& b;
  std::vector<int8_t> memo;  // -1 unknown, 0 no, 1 yes

  bool at(size_t i, size_t j) {
    int8_t& m = memo[i * (b.size() + 1) + j];
    if (m >= 0) return m == 1;
    m = 0;  // a cycle cannot happen (each step advances i or j), but be safe
    bool r = false;
    if (i == a.size()) {
      r = j == b.size();
    } else if (a[i].kind == T::Globstar) {
      r = at(i + 1, j) || (j < b.size() && at(i, j + 1));
    } else if (a[i].kind == T::Star) {
      r = at(i + 1, j) || (j < b.size() && slashless(b[j]) && at(i, j + 1));
    } else if (j == b.size()) {
      r = false;  // the outer needs a character where the inner may end
    } else if (a[i].kind == T::One) {
      r = (b[j].kind == T::One || (b[j].kind == T::Lit && b[j].c != '/')) && at(i + 1, j + 1);
    } else {
      r = b[j].kind == T::Lit && b[j].c == a[i].c && at(i + 1, j + 1);
    }
    m = r ? 1 : 0;
    return r;
  }
};

}  // namespace

bool glob_covers(const std::string& outer, const std::string& inner) {
  if (outer == inner) return true;
  // Patterns are short (policy values); bound the table all the same.
  if (outer.size() > 4096 || inner.size() > 4096) return false;
  const auto a = tokens(outer), b = tokens(inner);
  Cover c{a, b, std::vector<int8_t>((a.size() + 1) * (b.size() + 1), -1)};
  return c.at(0, 0);
}

bool globs_cover(const std::vector<std::string>& outer, const std::vector<std::string>& inner) {
  return std::all_of(inner.begin(), inner.end(), [&](const std::string& p) {
    return std::any_of(outer.begin(), outer.end(), [&](const std::string& o) { return glob_covers(o, p); });
  });
}

}  // namespace gh::policy
